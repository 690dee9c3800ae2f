from registry._cli import main

main()
