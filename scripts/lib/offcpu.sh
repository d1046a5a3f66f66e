# Sourced by scripts/bench: where a running process's threads spend their time off the CPU (sleeping on locks,
# channels and sockets; blocked on disk, e.g. fsync; preempted), from perf's scheduler events. Written for this machine:
# perf without BPF and a kernel without schedstats, so the split comes from each switch's prev_state.
# offcpu PID SECONDS OUTFILE  -- on/off-CPU time per thread comm of a running process.
# Needs root (or perf_event_paranoid<=1 + tracefs access), perf, awk. Raw data kept in OUTFILE.d/
offcpu() {
  local pid=$1 secs=${2:-10} out=${3:-/tmp/offcpu.txt}
  [[ -d /proc/$pid ]] || { echo "offcpu: no pid $pid" >&2; return 1; }
  local d=$out.d; mkdir -p "$d"; rm -f "$d"/*
  _oc_snap() {  # tid run_ns rq_ns state starttime wchan comm  (one line per thread)
    local t s r
    for t in /proc/$pid/task/*; do
      [[ -r $t/stat ]] || continue # the thread, or the whole process, has gone
      s=$(cat "$t/stat" 2>/dev/null) || continue; r=${s##*) }; r=($r)
      printf '%s %s %s %s %s %s\n' "${t##*/}" "$(<"$t/schedstat")" "${r[0]}" "${r[19]}" \
        "$(<"$t/wchan")" "$(<"$t/comm")"
    done 2>/dev/null
  }
  _oc_now() { awk '/^now at/{printf "%.6f\n", $3/1e9; exit}' /proc/timer_list; }  # CLOCK_MONOTONIC
  # 1) off-CPU intervals: sched_switch (prev_state + kernel stack) + PERF_RECORD_SWITCH in/out
  perf record -q -k mono -e sched:sched_switch --switch-events -g -p "$pid" -o "$d/sw.data" \
    2>"$d/record.err" & local prec=$!
  # 2) syscall time summary per thread
  local ptr=; if [[ ${OFFCPU_TRACE:-1} != 0 ]]; then   # OFFCPU_TRACE=0 skips (costly at high syscall rates)
    perf trace -s -p "$pid" -o "$d/trace.txt" 2>"$d/trace.err" & ptr=$!; fi
  sleep 0.7                                     # let perf attach before window starts
  local A B; A=$(_oc_now); _oc_snap > "$d/snapA"
  sleep "$secs"
  B=$(_oc_now); _oc_snap > "$d/snapB"
  kill -INT $prec $ptr 2>/dev/null; wait $prec $ptr 2>/dev/null
  perf script -i "$d/sw.data" --show-switch-events -F comm,tid,time,event,trace,ip,sym \
    >"$d/sw.txt" 2>"$d/script.err"
  {
  printf 'offcpu: pid %s (%s)  window %.2f s  %s\n' "$pid" "$(cat /proc/$pid/comm 2>/dev/null)" \
    "$(awk -v a=$A -v b=$B 'BEGIN{print b-a}')" "$(date '+%F %T')"
  grep -hiE 'lost|error' "$d/record.err" "$d/script.err" | head -3 | sed 's/^/  perf warning: /' || true
  awk -v A="$A" -v B="$B" -v W="$(awk -v a=$A -v b=$B 'BEGIN{print b-a}')" '
    function acc(tid, a, b, k,   st) { if (a < A) a = A; if (b > B) b = B; if (b <= a) return
      T[tid] = 1; if (k == "on") { cpu[tid] += b - a; return }
      st = substr(k, 1, 1); off[tid] += b - a
      if (st == "S" || st == "I") slp[tid] += b - a; else if (st == "D") io[tid] += b - a
      else if (st == "R") pre[tid] += b - a; else unk[tid] += b - a
      if (st == "S" || st == "D") stk[tid, st " " sg[tid]] += b - a }
    FILENAME ~ /snapA$/ { a_run[$1] = $2; a_st[$1] = $5; a_wc[$1] = $7
                          n = $1; $1=$2=$3=$4=$5=$6=$7=""; sub(/^ +/, ""); cm[n] = $0; next }
    FILENAME ~ /snapB$/ { inB[$1] = 1; if ($1 in a_run) { n = $1; r = $2 - a_run[$1]; $1=$2=$3=$4=$5=$6=$7=""
                          sub(/^ +/, ""); cm[n] = $0; ss[$0] += r / 1e9; hasss[$0] = 1 } next }
    # ---- perf script output ----
    /^[ \t]+[0-9a-f]+ / { if (!inst) next; s = $2
      if ($1 ~ /^ffffffff/) {
        if (s ~ /^__(x64|ia32)_sys_|^__do_sys_|^__se_sys_/) { sub(/^__(x64_|ia32_|do_|se_)sys_/, "", s); if (sys == "") sys = s }
        else if (s ~ /^asm_exc_page_fault/) { if (sys == "") sys = "pagefault" }
        else if (s !~ /^(__schedule|schedule|schedule_timeout|schedule_hrtimeout_range(_clock)?|io_schedule(_timeout)?|schedule_preempt_disabled|preempt_schedule.*|__cond_resched|do_syscall_64|entry_SYSCALL.*)$/ && nk < 3)
          kf = kf (nk++ ? "<" : "") s
      } else if (uf == "" && s != "[unknown]") uf = s
      next }
    /^$/ { if (inst) { sg[itid] = (sys == "" ? "-" : sys) ": " kf (uf != "" ? " [" uf "]" : ""); inst = 0 } next }
    { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) break
      if (i > NF) next; tid = $(i-1); t = $i + 0
      if (!(tid in a_st) && !(tid in inB)) { c = $1; for (j = 2; j < i-1; j++) c = c " " $j; cm[tid] = c }
      if ($(i+1) == "PERF_RECORD_SWITCH") {
        if ($(i+2) == "OUT") { if (tid in mode) acc(tid, since[tid], t, mode[tid]); else if (tid in a_st) acc(tid, A, t, "on")
                               mode[tid] = (tid in pst) ? pst[tid] : "?"; since[tid] = t; delete pst[tid] }
        else { if (tid in mode) acc(tid, since[tid], t, mode[tid])
               else if (tid in a_st) { k = a_st[tid]; sg[tid] = "(asleep at start) wchan=" a_wc[tid]; acc(tid, A, t, k == "R" ? "?" : k) }
               mode[tid] = "on"; since[tid] = t }
      } else if ($(i+1) == "sched:sched_switch:") {
        match($0, /prev_state=[^ ]+/); pst[tid] = substr($0, RSTART + 11, RLENGTH - 11)
        inst = 1; itid = tid; sys = ""; kf = ""; uf = ""; nk = 0 } }
    END {
      for (tid in mode) if (tid in inB) acc(tid, since[tid], B, mode[tid])   # exited tids: no tail
      for (tid in a_st) if (!(tid in mode)) {   # no switch at all in window
        sg[tid] = "(whole window) wchan=" a_wc[tid]; acc(tid, A, B, a_st[tid] == "R" ? "on" : a_st[tid]) }
      for (tid in T) { c = cm[tid]; seen[c] = 1; nthr[c]++; Cc[c] += cpu[tid]; Co[c] += off[tid]
        Cs[c] += slp[tid]; Cd[c] += io[tid]; Cp[c] += pre[tid]; Cu[c] += unk[tid] }
      for (g in stk) { split(g, p, SUBSEP); S2[cm[p[1]] SUBSEP p[2]] += stk[g] }
      printf "\n%-18s %4s %8s %8s %8s %8s %8s %8s %8s\n", "comm", "thr", "cpu_s", "off_s", "sleep_s", "io_s", "preem_s", "other_s", "cpu_ss"
      for (c in seen) { cc = c; gsub(/ /, "_", cc); printf "%-18s %4d %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8s\n", substr(cc, 1, 18), nthr[c], Cc[c], Co[c], Cs[c], Cd[c], Cp[c], Cu[c], (c in hasss) ? sprintf("%.3f", ss[c]) : "-" | "sort -k3,3nr -k4,4nr" }
      close("sort -k3,3nr -k4,4nr")
      printf "\nTop off-CPU stacks (S=sleep D=io; syscall: kernel frames [first user frame]), seconds:\n"
      for (g in S2) { split(g, p, SUBSEP); cc = p[1]; gsub(/ /, "_", cc); printf "%9.3f  %-14s %s\n", S2[g], substr(cc, 1, 14), substr(p[2], 1, 110) | "sort -k1,1nr | head -12" }
      close("sort -k1,1nr | head -12")
    }' "$d/snapA" "$d/snapB" "$d/sw.txt"
  printf '\nTop syscalls by total time inside the syscall (perf trace -s, window ~%ss+1s):\n' "$secs"
  if grep -q 'Summary of events' "$d/trace.txt" 2>/dev/null; then
    awk 'match($0, /^ (.*) \([0-9]+\), [0-9]+ events/) { c = substr($0, 2); sub(/ \([0-9]+\), [0-9]+ events.*/, "", c); next }
         c != "" && NF >= 8 && $2 ~ /^[0-9]+$/ && $4 ~ /^[0-9.]+$/ { t[c " " $1] += $4 / 1000; n[c " " $1] += $2 }
         END { for (k in t) { split(k, p, " "); printf "%9.3f  %-16s %-18s calls=%d\n", t[k], substr(k, 1, length(k) - length(p[length(p)]) - 1), p[length(p)], n[k] | "sort -k1,1nr | head -12" } }' "$d/trace.txt"
  elif [[ -z $ptr ]]; then echo "  (skipped: OFFCPU_TRACE=0)"
  else echo "  perf trace produced no summary: $(head -c 300 "$d/trace.err" 2>/dev/null)"; fi
  } > "$out"
  cat "$out"
}
