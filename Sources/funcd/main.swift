import FuncdSupervisor

// `funcd` links no interpreter: see FrontDoor.
FrontDoor.main()
