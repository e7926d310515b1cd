from surgtui.cli.app import main

main()
