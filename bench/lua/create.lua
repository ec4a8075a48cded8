-- POST /v1/access-tokens as the caller in $CALLER (an api token, without expiry).
wrk.method = "POST"
wrk.body = '{"name":"bench","assignments":["1:owner"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CALLER")
