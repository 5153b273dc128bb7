"""The reference program itself, for comparison: the seed's mnist_acgan.py on Keras 2.

    pip install tf-keras
    python bench/reference_program.py [STEPS] [MNIST.npz] [OUT.png]

Its models, compile calls and loop body are the seed's, run through tf-keras (Keras 2
on TensorFlow 2.x), with the `Flatten` after the class embedding restored. It trains
STEPS batches (600 = one epoch, in file order as the reference does), logs the losses
every 20 steps, and draws the reference's epoch picture to OUT.png.
"""
import os, sys, time
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tf_keras as keras
from tf_keras import layers
from tf_keras.layers import Input, Dense, Reshape, Flatten, Embedding, Dropout, BatchNormalization, LeakyReLU, Conv2DTranspose, Conv2D
from tf_keras.models import Sequential, Model
from tf_keras.optimizers import Adam
np.random.seed(1337)
num_classes = 10
def build_generator(latent_size):
    cnn = Sequential()
    cnn.add(Dense(3 * 3 * 384, input_dim=latent_size, activation='relu'))
    cnn.add(Reshape((3, 3, 384)))
    cnn.add(Conv2DTranspose(192, 5, strides=1, padding='valid', activation='relu', kernel_initializer='glorot_normal'))
    cnn.add(BatchNormalization())
    cnn.add(Conv2DTranspose(96, 5, strides=2, padding='same', activation='relu', kernel_initializer='glorot_normal'))
    cnn.add(BatchNormalization())
    cnn.add(Conv2DTranspose(1, 5, strides=2, padding='same', activation='tanh', kernel_initializer='glorot_normal'))
    latent = Input(shape=(latent_size, ))
    image_class = Input(shape=(1,), dtype='int32')
    cls = Flatten()(Embedding(num_classes, latent_size, embeddings_initializer='glorot_normal')(image_class))
    h = layers.multiply([latent, cls])
    return Model([latent, image_class], cnn(h))
def build_discriminator():
    cnn = Sequential()
    cnn.add(Conv2D(32, 3, padding='same', strides=2, input_shape=(28, 28, 1)))
    cnn.add(LeakyReLU(0.2)); cnn.add(Dropout(0.3))
    cnn.add(Conv2D(64, 3, padding='same', strides=1)); cnn.add(LeakyReLU(0.2)); cnn.add(Dropout(0.3))
    cnn.add(Conv2D(128, 3, padding='same', strides=2)); cnn.add(LeakyReLU(0.2)); cnn.add(Dropout(0.3))
    cnn.add(Conv2D(256, 3, padding='same', strides=1)); cnn.add(LeakyReLU(0.2)); cnn.add(Dropout(0.3))
    cnn.add(Flatten())
    image = Input(shape=(28, 28, 1))
    features = cnn(image)
    fake = Dense(1, activation='sigmoid', name='generation')(features)
    aux = Dense(num_classes, activation='softmax', name='auxiliary')(features)
    return Model(image, [fake, aux])
batch_size, latent_size = 100, 100
discriminator = build_discriminator()
discriminator.compile(optimizer=Adam(learning_rate=0.0002, beta_1=0.5), loss=['binary_crossentropy', 'sparse_categorical_crossentropy'])
generator = build_generator(latent_size)
latent = Input(shape=(latent_size, )); image_class = Input(shape=(1,), dtype='int32')
fake = generator([latent, image_class])
discriminator.trainable = False
fake, aux = discriminator(fake)
combined = Model([latent, image_class], [fake, aux])
combined.compile(optimizer=Adam(learning_rate=0.0002, beta_1=0.5), loss=['binary_crossentropy', 'sparse_categorical_crossentropy'])
d = np.load(sys.argv[2] if len(sys.argv) > 2 else '../shared/data/mnist.npz')
x_train = np.expand_dims((d['x_train'].astype(np.float32) - 127.5) / 127.5, -1); y_train = d['y_train']
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 600
dl, gl = [], []
t0 = time.time()
for index in range(steps):
    image_batch = x_train[index * batch_size:(index + 1) * batch_size]
    label_batch = y_train[index * batch_size:(index + 1) * batch_size]
    noise = np.random.uniform(-1, 1, (len(image_batch), latent_size))
    sampled_labels = np.random.randint(0, num_classes, len(image_batch))
    generated_images = generator.predict([noise, sampled_labels.reshape((-1, 1))], verbose=0)
    x = np.concatenate((image_batch, generated_images))
    y = np.array([0.95] * len(image_batch) + [0] * len(image_batch))
    aux_y = np.concatenate((label_batch, sampled_labels), axis=0)
    w = [np.ones(2 * len(image_batch)), np.concatenate((np.ones(len(image_batch)) * 2, np.zeros(len(image_batch))))]
    dl.append(discriminator.train_on_batch(x, [y, aux_y], sample_weight=w))
    noise = np.random.uniform(-1, 1, (2 * len(image_batch), latent_size))
    sampled_labels = np.random.randint(0, num_classes, 2 * len(image_batch))
    gl.append(combined.train_on_batch([noise, sampled_labels.reshape((-1, 1))], [np.ones(2 * len(image_batch)) * 0.95, sampled_labels]))
    if (index + 1) % 20 == 0:
        print(index + 1, "D", np.round(dl[-1], 3), "G", np.round(gl[-1], 3), round(time.time() - t0), flush=True)
# the reference's epoch-1 picture
num_rows = 40
noise = np.tile(np.random.uniform(-1, 1, (num_rows, latent_size)), (num_classes, 1))
sampled_labels = np.array([[i] * num_rows for i in range(num_classes)]).reshape(-1, 1)
generated_images = generator.predict([noise, sampled_labels], verbose=0)
real_labels = y_train[0:400]
indices = np.argsort(real_labels, axis=0)
real_images = x_train[0:400][indices]
img = np.concatenate((generated_images, np.repeat(np.ones_like(x_train[:1]), num_rows, axis=0), real_images))
img = (np.concatenate([r.reshape(-1, 28) for r in np.split(img, 2 * num_classes + 1)], axis=-1) * 127.5 + 127.5).astype(np.uint8)
from PIL import Image
Image.fromarray(img).save(sys.argv[3] if len(sys.argv) > 3 else 'reference_plot.png')
print("saved plot", flush=True)
