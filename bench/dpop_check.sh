# Sourced by the rig's run.sh (rig.sh adds it to the scratch copy): the `dpop` scenario's auth
# check. The first line of tokens/dpop.txt is sent once (200, the identity forwarded, a spoofed
# X-User-Id replaced), then again (401: the proof is spent) and its token as Bearer (401).
dpop_check() {  # $1 port -> prints "ok" or "FAIL:..."
  local url="http://127.0.0.1:$1/" line tok proof fails=() got code
  line=$(head -1 "$BENCH/tokens/dpop.txt"); tok=${line%%$'\t'*}; proof=${line#*$'\t'}
  got=$(curl -s -o /dev/null -D - --max-time 3 -H "Authorization: DPoP $tok" -H "DPoP: $proof" \
          -H 'X-User-Id: spoofed' "$url" | tr -d '\r' \
        | awk 'NR==1{c=$2} tolower($1)=="x-seen-user:"{u=$2} END{print c" "u}')
  [[ $got == "200 user-0" ]] || fails+=("valid=$got")
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H "Authorization: DPoP $tok" -H "DPoP: $proof" "$url")
  [[ $code == 401 ]] || fails+=("replayed=$code")
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H "Authorization: Bearer $tok" "$url")
  [[ $code == 401 ]] || fails+=("as-bearer=$code")
  if ((${#fails[@]})); then local IFS=';'; echo "FAIL:${fails[*]}"; else echo ok; fi
}
