# Settlement economics, sourced by scripts/bench: what each relay paid in fees against what it earned, and what it
# wrote on chain, for honest workloads, under the relay's default settlement policy and under settling every
# claim each round (what relays did before the policy). On the fast chain (Chopsticks, this runtime's fees).
#
#   demo×N    N viewers, one after another (each a home of its own with the dev chain's viewer account, so one
#             lane), of the demo's 20 s 720p video through a cache relay that fills from the origin.
#   1080p     one viewer of a 10-minute 1080p video (one 5 Mbit/s rendition, 2 s segments) through the cache.
#
# The origin relay (the creator's account) charges 5·10^7 per MiB, the cache (the operator's) the default 10^8.
# Needs $ferry, $examples (with chain_money), $dir, say, record, first_line, pids.

econ_port=9966
econ_chain=ws://127.0.0.1:$econ_port
econ_stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# econ_run NAME POLICY VIDEO VIEWERS: one workload under one policy ("default" or "every"); records a line per
# relay: earned (the operator's part), fees, fees as a share of earned, settle transactions, claims on chain,
# and what is still pending.
econ_run() {
  local name=$1 policy=$2 video=$3 viewers=$4 run=$dir/econ-$1-$2
  rm -rf "$run" && mkdir -p "$run"
  "$ferry" chain up --fresh --kind chopsticks --rpc-port "$econ_port" >"$run/chain.log" 2>&1
  local who role
  for who in origin:creator cache:operator; do
    role=${who#*:}; who=${who%%:*}
    "$ferry" --home "$run/$who" init --dev-account "$role" >/dev/null 2>&1
    sed -i 's/^settle_every_ms = .*/settle_every_ms = 2000/' "$run/$who/config.toml"
    # Every claim in the next round, whatever it pays: how relays settled before the policy.
    if [[ $policy == every ]]; then
      sed -i 's/^settle_fee_multiple = .*/settle_fee_multiple = 0/' "$run/$who/config.toml"
    fi
  done
  ef() { local who=$1; shift; "$ferry" --home "$run/$who" --chain "$econ_chain" "$@"; }
  ef origin operator register --price 50000000 --bond 10000000000000 >/dev/null
  ef cache operator register --price 100000000 --bond 10000000000000 >/dev/null
  local cid
  cid=$(ef origin publish "$video" --title "economics" 2>"$run/publish.log" | tail -1)
  local first
  # From the block after registrations and publishing: what serving and settling cost.
  first=$(( $("$ferry" chain status --json --rpc-port "$econ_port" | jq -r .finalized) + 1 ))
  ( exec "$ferry" --home "$run/origin" --chain "$econ_chain" relay --listen /ip4/127.0.0.1/tcp/0 \
      >"$run/origin.out" 2>"$run/origin.log" ) & local origin_pid=$!; pids+=($origin_pid)
  local origin_addr cache_addr
  origin_addr=$(first_line "$run/origin.out" /tcp/)
  ( exec "$ferry" --home "$run/cache" --chain "$econ_chain" relay --listen /ip4/127.0.0.1/tcp/0 \
      --bootstrap "$origin_addr" >"$run/cache.out" 2>"$run/cache.log" ) & local cache_pid=$!; pids+=($cache_pid)
  cache_addr=$(first_line "$run/cache.out" /tcp/)
  local i url watch_pid
  for i in $(seq "$viewers"); do
    "$ferry" --home "$run/viewer-$i" init --dev-account viewer >/dev/null 2>&1
    ( exec "$ferry" --home "$run/viewer-$i" --chain "$econ_chain" watch "$cid" --bootstrap "$cache_addr" \
        --gateway 127.0.0.1:0 >"$run/viewer-$i.out" 2>"$run/viewer-$i.log" ) & watch_pid=$!
    url=$(first_line "$run/viewer-$i.out" http://)
    # Every segment of every rendition, as players that watched each to the end fetch them.
    ffmpeg -nostdin -hide_banner -loglevel error -i "$url" -map 0 -c copy -f null - >>"$run/viewer-$i.log" 2>&1
    econ_stop "$watch_pid"
  done
  # Until both relays settled what they will settle: everything (every), or what pays once claims are due (default).
  local wait_s=60; [[ $policy == default ]] && wait_s=200
  local settled='(.claims | length) > 0 and .pending == "0" and .in_flight == "0"'
  for _ in $(seq "$wait_s"); do
    if ef cache earnings --json 2>/dev/null | jq -e "$settled" >/dev/null &&
      ef origin earnings --json 2>/dev/null | jq -e "$settled" >/dev/null; then
      break
    fi
    sleep 1
  done
  local pending_cache pending_origin
  pending_cache=$(ef cache earnings --json | jq -r .pending)
  pending_origin=$(ef origin earnings --json | jq -r .pending)
  econ_stop "$cache_pid"; econ_stop "$origin_pid"
  "$examples/chain_money" "$econ_chain" "$first" >"$run/money.jsonl"
  local acct line
  for who in cache origin; do
    acct=$("$ferry" --home "$run/$who" id --json | jq -r .account)
    line=$(jq -c --arg a "$acct" 'select(.account == $a)' "$run/money.jsonl")
    local pending=$pending_cache; [[ $who == origin ]] && pending=$pending_origin
    record "economics $name $policy: $who" "$(jq -r --arg p "$pending" '"earned \(.operator_paid) fees \(.fees) (\(
      if (.operator_paid | tonumber) > 0 then ((.fees | tonumber) * 10000 / (.operator_paid | tonumber) | floor) / 100
      else "-" end)% of earned) settlements \(.settlements) claims on chain \(.claims) pending \($p)"' <<<"${line:-{\}}")"
  done
  "$ferry" chain down --forget --rpc-port "$econ_port" >/dev/null 2>&1 || true
}

economics() {
  say "settlement economics: fees against earnings, default policy and settling every claim each round"
  local demo=$dir/econ-demo.mp4 long=$dir/econ-1080p
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=25 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest "$demo"
  local n
  for n in ${FERRY_BENCH_ECON_VIEWERS:-1 10}; do
    econ_run "demo×$n" every "$demo" "$n"
    econ_run "demo×$n" default "$demo" "$n"
  done
  if [[ ${FERRY_BENCH_ECON_LONG:-1} == 1 ]]; then
    mkdir -p "$long"
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=25 -t 600 \
      -c:v libx264 -preset ultrafast -b:v 5M -maxrate 5M -bufsize 5M -g 50 -pix_fmt yuv420p \
      -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_filename "$long/seg%03d.ts" "$long/index.m3u8"
    econ_run 1080p-10min every "$long" 1
    econ_run 1080p-10min default "$long" 1
  fi
}
