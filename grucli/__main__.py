from grucli.cli import main

main()
