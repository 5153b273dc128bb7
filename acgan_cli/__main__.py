from acgan_cli.cli import main

main()
