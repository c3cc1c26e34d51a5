from sloengine.cli import main

main()
