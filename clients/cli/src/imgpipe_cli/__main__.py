from imgpipe_cli.app import main

main()
