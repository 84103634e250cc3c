from evidence.cli.main import main

main()
