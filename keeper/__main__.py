from keeper.service.cli import main

main()
