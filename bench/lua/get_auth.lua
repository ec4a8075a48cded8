-- GET with the bearer token in $CALLER.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CALLER")
