;; A hand-written plugin core module for tests and benches, in the canonical
;; ABI of world fastlb:lb/plugin@0.1.0. The embedder substitutes:
;;   {SELECT}      an i32 expression: the index `select` answers, -1 for none
;;                 (`$args` points at (request, attempt); `$n` = backends)
;;   {WANTS_PATH}  00 or 01: plugin-info.wants-path
;;   {STICKY}      00 or 01: plugin-info.sticky
;;   {INIT}        an i32 expression: 64 (ok) or 200 (init error)
;;   {PLAN_LEN}    how many u32 shares `plan` answers
;;   {PLAN_DATA}   those shares, as a WAT data string (little-endian u32s)
;; Memory map: 16 "fixture", 32 "sid", 40 "v1", 48 "bad config";
;; 64 init result (ok), 128 select result, 144 lookup result,
;; 160 on-response result, 200 init result (error), 224 plan result,
;; 256 plan shares; heap from 1024, reset at the end of every call.
(module
  (import "fastlb:lb/log@0.1.0" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (global $n (mut i32) (i32.const 0))
  (global $rr (mut i32) (i32.const 0))

  (data (i32.const 16) "fixture")
  (data (i32.const 32) "sid")
  (data (i32.const 40) "v1")
  (data (i32.const 48) "bad config")
  ;; result<plugin-info, string>: ok, name (16, 7), wants-host 0,
  ;; wants-path, no headers, wants-cookie some("sid"), sticky
  (data (i32.const 64)
    "\00\00\00\00" "\10\00\00\00" "\07\00\00\00" "\00\{WANTS_PATH}\00\00"
    "\00\00\00\00" "\00\00\00\00" "\01\00\00\00" "\20\00\00\00" "\03\00\00\00"
    "\{STICKY}\00\00\00")
  ;; result<plugin-info, string>: err("bad config")
  (data (i32.const 200) "\01\00\00\00" "\30\00\00\00" "\0a\00\00\00")
  ;; list<u32>: (256, {PLAN_LEN}), the shares at 256
  (data (i32.const 256) "{PLAN_DATA}")

  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (local.get $end) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (global.set $heap (local.get $end))
    (if (local.get $old) (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (local.get $p))

  (func (export "fastlb:lb/strategy@0.1.0#init") (param i32 i32) (result i32)
    (global.set $heap (i32.const 1024))
    {INIT})

  (func (export "fastlb:lb/strategy@0.1.0#set-table") (param $ptr i32) (param $len i32)
    (global.set $n (local.get $len))
    (global.set $heap (i32.const 1024)))

  (func (export "fastlb:lb/strategy@0.1.0#set-load") (param i32 i32)
    (global.set $heap (i32.const 1024)))

  (func (export "fastlb:lb/strategy@0.1.0#select") (param $args i32) (result i32)
    (local $a i32)
    (local.set $a {SELECT})
    (global.set $heap (i32.const 1024))
    (if (i32.lt_s (local.get $a) (i32.const 0))
      (then (i32.store8 (i32.const 128) (i32.const 0)))
      (else
        (i32.store8 (i32.const 128) (i32.const 1))
        (i32.store (i32.const 132) (local.get $a))))
    (i32.const 128))

  ;; planner.plan: the list at 256 (a test of a plugin built before the
  ;; planner existed takes the export away)
  (func (export "fastlb:lb/planner@0.1.0#plan") (result i32)
    (i32.store (i32.const 224) (i32.const 256))
    (i32.store (i32.const 228) (i32.const {PLAN_LEN}))
    (i32.const 224))

  ;; decision.hash(request.hash)
  (func (export "fastlb:lb/sticky@0.1.0#lookup")
    (param i32 i32 i64 i64 i64 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (global.set $heap (i32.const 1024))
    (i32.store8 (i32.const 144) (i32.const 2))
    (i64.store (i32.const 152) (local.get 4))
    (i32.const 144))

  ;; some(set-cookie { name: "sid", value: "v1", max-age: some(60) })
  (func (export "fastlb:lb/sticky@0.1.0#on-response") (param $args i32) (result i32)
    (global.set $heap (i32.const 1024))
    (i32.store8 (i32.const 160) (i32.const 1))
    (i32.store (i32.const 164) (i32.const 32))
    (i32.store (i32.const 168) (i32.const 3))
    (i32.store (i32.const 172) (i32.const 40))
    (i32.store (i32.const 176) (i32.const 2))
    (i32.store8 (i32.const 180) (i32.const 1))
    (i32.store (i32.const 184) (i32.const 60))
    (i32.const 160))
)
