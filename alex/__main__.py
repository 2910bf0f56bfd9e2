from alex.cli import main

main()
