# A trusted issuer for scripts (sourced): an RSA key made with openssl, its JWKS served from a
# folder by Python's http.server on 127.0.0.1, and callers signed with openssl. Needs openssl and
# python3; the caller of start_issuer stops the server (its pid is in ISSUER_PID).

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

start_issuer() { # folder port
    local folder=$1 port=$2 modulus n
    mkdir -p "$folder/.well-known"
    openssl genrsa -out "$folder/issuer.pem" 2048 2>/dev/null
    modulus=$(openssl rsa -in "$folder/issuer.pem" -noout -modulus | cut -d= -f2)
    n=$(python3 -c "import base64,sys; print(base64.urlsafe_b64encode(bytes.fromhex(sys.argv[1])).rstrip(b'=').decode())" "$modulus")
    printf '{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"script-issuer","n":"%s","e":"AQAB"}]}' "$n" \
        > "$folder/.well-known/jwks.json"
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$folder" >/dev/null 2>&1 &
    ISSUER_PID=$!
    ISSUER="http://127.0.0.1:$port"
    ISSUER_KEY="$folder/issuer.pem"
}

issuer_token() { # org user: a two-hour token of the issuer, holding the role <org>:owner
    local now header payload input
    now=$(date +%s)
    header=$(printf '{"alg":"RS256","typ":"JWT","kid":"script-issuer"}' | b64url)
    payload=$(printf '{"iss":"%s","sub":"%s","custom:ivy_org_id":"%s","custom:ivy_user_id":"%s","assignments":["%s:owner"],"token_use":"id","iat":%s,"exp":%s}' \
        "$ISSUER" "$2" "$1" "$2" "$1" "$now" "$((now + 7200))" | b64url)
    input="$header.$payload"
    printf '%s.%s' "$input" "$(printf '%s' "$input" | openssl dgst -sha256 -sign "$ISSUER_KEY" -binary | b64url)"
}
