from surgtui.cli import main

main()
