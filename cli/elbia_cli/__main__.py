from elbia_cli.main import main

main()
