print("wnflow")
