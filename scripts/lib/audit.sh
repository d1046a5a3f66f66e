# The audit's speed, sourced by scripts/bench: how long `ferry audit` takes to recheck N settled receipts, from
# nothing and resumed from its cache. N viewers, one claim each, settled in full batches of 2048 by one relay; the
# viewers hold no lanes, so every receipt's amount is 0 and pays nothing, and the audit still verifies, recomputes
# and compares each. On the real dev node when it is installed, else on the fast chain.
#
#   FERRY_BENCH_AUDIT_RECEIPTS   receipt counts (default "10000 100000")
# Needs $ferry, $examples (with audit_bench), $dir, say, record.

audit_port=9967
audit_chain=ws://127.0.0.1:$audit_port

# audit_run N: records the seconds a full audit of N settled receipts takes, and the resumed audit.
audit_run() {
  local n=$1 run=$dir/audit-$1
  rm -rf "$run" && mkdir -p "$run"
  "$ferry" chain up --fresh --rpc-port "$audit_port" >"$run/chain.log" 2>&1
  local relay=$run/relay
  "$ferry" --home "$relay" init --dev-account creator >/dev/null 2>&1
  sed -i 's/^settle_every_ms = .*/settle_every_ms = 1000/; s/^settle_fee_multiple = .*/settle_fee_multiple = 0/;
          s/^settle_batch = .*/settle_batch = 2048/' "$relay/config.toml"
  rf() { "$ferry" --home "$relay" --chain "$audit_chain" "$@"; }
  rf operator register --price 1000000 --bond 10000000000000 >/dev/null
  ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=320x240:rate=25 -t 2 -pix_fmt yuv420p "$run/v.mp4"
  local cid genesis start
  cid=$(rf publish "$run/v.mp4" --share-bps 2000 2>"$run/publish.log" | tail -1)
  genesis=$("$ferry" chain status --json --rpc-port "$audit_port" | jq -r .genesis)
  start=$("$ferry" chain status --json --rpc-port "$audit_port" | jq -r .finalized)
  "$examples/audit_bench" "$relay" "$cid" "${genesis#0x}" "$n" >/dev/null
  "$ferry" --home "$relay" --chain "$audit_chain" relay --listen /ip4/127.0.0.1/tcp/0 >"$run/relay.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  # `ferry earnings` reads the ledger itself until the relay holds it, so it waits for the relay to be up.
  for _ in $(seq 120); do
    grep -q "relay running" "$run/relay.log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$run/relay.log" >&2; return 1; }
    sleep 1
  done
  # Settled when every claim is.
  for _ in $(seq 3600); do
    if [[ $("$ferry" --home "$relay" earnings --json 2>/dev/null | jq '[.claims[] | select(.state == "settled" or .state == "short")] | length') == "$n" ]]; then
      break
    fi
    sleep 1
  done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  local end t0 t1 t2
  end=$("$ferry" chain status --json --rpc-port "$audit_port" | jq -r .finalized)
  export FERRY_CACHE=$run/cache
  t0=$(now)
  "$ferry" --home "$run/auditor" audit --chain "$audit_chain" --to-block "$end" --json >"$run/audit.json"
  t1=$(now)
  "$ferry" --home "$run/auditor" audit --chain "$audit_chain" --to-block "$end" --json >"$run/audit-again.json"
  t2=$(now)
  unset FERRY_CACHE
  local checked
  checked=$(jq '[.payouts[] | select(.status != "unchanged")] | length' "$run/audit.json")
  record "audit of $checked settled receipts ($((end - start)) blocks), s:" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'), resumed from its cache: $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')"
  "$ferry" chain down --forget --rpc-port "$audit_port" >/dev/null 2>&1 || true
}

audit_speed() {
  local n
  for n in ${FERRY_BENCH_AUDIT_RECEIPTS:-10000 100000}; do
    say "audit: $n settled receipts"
    audit_run "$n"
  done
}
