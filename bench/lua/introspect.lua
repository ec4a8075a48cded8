-- POST /v1/access-tokens/introspect for the token in $TOKEN, as client $CLIENT_BASIC (base64 id:secret).
wrk.method = "POST"
wrk.body = "token=" .. os.getenv("TOKEN")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("CLIENT_BASIC")
