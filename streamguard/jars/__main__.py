from streamguard.jars import main

main()
