// The exit path: KVM_RUN on the JS thread, MMIO exits (and x86's port-I/O exits, x86-port-io-exit.cc)
// dispatched synchronously to JS callbacks with numbers only (no per-exit objects), one handle scope per batch
// of exits. Returns to JS when an exit needs the machine, a callback asked to stop, or the event loop has work.
#include "exit-values.h"
#include "vcpu.h"
#include "watcher.h"
#include <cerrno>
#include <climits>
#include <cstddef>
#include <csignal>
#include <algorithm>
#include <cstring>
#include <string>
#include <ctime>
#include <mutex>
#include <sys/ioctl.h>
#include <uv.h>

namespace kvmn {

static const uint32_t kExitsPerScope = 256;

int KickSignal() { return SIGRTMIN + 4; }

static void NoopHandler(int) {}

void EnsureKickSignal() {
  static std::once_flag installed;
  static thread_local bool unblocked = false;
  std::call_once(installed, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = NoopHandler;  // no SA_RESTART: the signal must make KVM_RUN fail with EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(KickSignal(), &sa, nullptr);
  });
  if (!unblocked) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, KickSignal());
    pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
    unblocked = true;
  }
}

void VcpuHandle::Kick() {
  stopRequested_.store(true, std::memory_order_seq_cst);
  if (run_ && running_.load(std::memory_order_seq_cst)) KickNow(KickTarget{run_, &inKvmRun_, &runThread_});
}

Napi::Value VcpuHandle::KickJs(const Napi::CallbackInfo& info) {
  Kick();
  return info.Env().Undefined();
}

Napi::Value VcpuHandle::RequestStop(const Napi::CallbackInfo& info) {
  stopRequested_.store(true, std::memory_order_seq_cst);
  return info.Env().Undefined();
}

Napi::Value VcpuHandle::ExitResult(Napi::Env env, const char* reason) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("reason", Napi::String::New(env, reason));
  return o;
}

// Results that end the machine's run carry the vCPU id so the machine can report which CPU failed.
static Napi::Object WithVcpu(Napi::Value result, uint32_t id) {
  Napi::Object o = result.As<Napi::Object>();
  o.Set("vcpuId", Napi::Number::New(result.Env(), id));
  return o;
}

Napi::Value VcpuHandle::InternalErrorResult(Napi::Env env) {
  Napi::Object o = WithVcpu(ExitResult(env, "internal-error"), id_);
  uint32_t ndata = run_->internal.ndata;
  if (ndata > 16) ndata = 16;
  o.Set("suberror", Napi::Number::New(env, run_->internal.suberror));
  SetProgramCounter(o);
  size_t nbytes = 0;
  const uint8_t* bytes = nullptr;
  if (run_->internal.suberror == KVM_INTERNAL_ERROR_EMULATION && ndata >= 3 &&
      (run_->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
    nbytes = run_->emulation_failure.insn_size;
    if (nbytes > sizeof(run_->emulation_failure.insn_bytes)) nbytes = sizeof(run_->emulation_failure.insn_bytes);
    bytes = run_->emulation_failure.insn_bytes;
  }
  Napi::Uint8Array b = Napi::Uint8Array::New(env, nbytes);
  if (nbytes) memcpy(b.Data(), bytes, nbytes);
  o.Set("bytes", b);
  Napi::Array data = Napi::Array::New(env, ndata);
  for (uint32_t i = 0; i < ndata; i++) data.Set(i, Napi::BigInt::New(env, static_cast<uint64_t>(run_->internal.data[i])));
  o.Set("data", data);
  return o;
}

namespace {

struct RunOptions {
  int64_t maxSliceMs = -1;
  int64_t immediateSliceMs = 4;
};

// How long the guest may run before the event loop needs the thread: libuv's own rule
// (uv_backend_timeout) minus one clause. libuv answers 0 whenever an idle handle is active, and Node keeps
// its idle handle active while any setImmediate is queued or being processed, including the very one that
// re-entered run(). That zero says nothing about new work, so idle handles only cap the slice at
// immediateSliceMs (immediates queued by others still run soon). Every other reason stays exact: a stop
// request, pending I/O callbacks or closing handles give a real 0, otherwise the next timer's due time.
// New fd readiness (ioeventfds, threadpool completions, sockets) is the watcher's job.
#if UV_VERSION_MAJOR == 1 && UV_VERSION_MINOR >= 46
inline bool QueueEmpty(const uv__queue* q) { return q->next == q; }

int64_t NextTimerMs(const uv_loop_t* loop) {
  if (loop->timer_heap.min == nullptr) return -1;
  // The heap's nodes are the heap_node fields of started uv_timer_t handles.
  const uv_timer_t* t = reinterpret_cast<const uv_timer_t*>(
      static_cast<const char*>(loop->timer_heap.min) - offsetof(uv_timer_t, heap_node));
  return static_cast<int64_t>(std::min<uint64_t>(uv_timer_get_due_in(t), INT_MAX));
}

int64_t SliceTimeoutMs(uv_loop_t* loop, int64_t immediateSliceMs) {
  if (loop->stop_flag != 0 || !QueueEmpty(&loop->pending_queue) || loop->closing_handles != nullptr) return 0;
  int64_t t = NextTimerMs(loop);
  if (!QueueEmpty(&loop->idle_handles) && (t < 0 || t > immediateSliceMs)) t = immediateSliceMs;
  return t;
}
#else
// Another libuv layout: no peeking. A zero is then taken as "immediates pending" (the old behaviour).
int64_t SliceTimeoutMs(uv_loop_t* loop, int64_t immediateSliceMs) {
  int64_t t = uv_backend_timeout(loop);
  return t == 0 ? immediateSliceMs : t;
}
#endif

// Counts the turns of this thread's event loop (a prepare handle runs once per turn, just before the poll
// phase; unref'd, so it keeps nothing alive, and it does not change libuv's timeout). A run entered while
// the loop has not turned since this vCPU's previous run (a synchronous caller) would see the same ready
// fds and due timers as that run and be kicked at once, forever: such a run gets a plain slice instead.
struct LoopTurns {
  uv_prepare_t handle;
  uv_loop_t* loop = nullptr;
  uint64_t count = 0;
};
thread_local LoopTurns* tlTurns = nullptr;

void CloseTurns(void* arg) {
  auto* t = static_cast<LoopTurns*>(arg);
  if (tlTurns == t) tlTurns = nullptr;
  uv_prepare_stop(&t->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->handle), [](uv_handle_t* h) { delete static_cast<LoopTurns*>(h->data); });
}

// The loop's turn count; UINT64_MAX when no counter could be started (every run then counts as fresh).
uint64_t LoopTurn(napi_env env, uv_loop_t* loop) {
  if (tlTurns && tlTurns->loop == loop) return tlTurns->count;
  auto* t = new LoopTurns();
  t->loop = loop;
  t->handle.data = t;
  if (uv_prepare_init(loop, &t->handle) != 0) { delete t; return UINT64_MAX; }
  uv_prepare_start(&t->handle, [](uv_prepare_t* h) { static_cast<LoopTurns*>(h->data)->count++; });
  uv_unref(reinterpret_cast<uv_handle_t*>(&t->handle));
  napi_add_env_cleanup_hook(env, CloseTurns, t);  // a worker's loop must close with no handle left open
  tlTurns = t;
  return 0;
}

}  // namespace

bool ReadDispatch(const Napi::CallbackInfo& info, const char* caller, DispatchHandlers* out) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) { ThrowType(env, (std::string(caller) + " expects a dispatch object with exit handlers").c_str()); return false; }
  out->object = info[0].As<Napi::Object>();
  out->mmio = out->object.Get("mmio");
#if defined(__x86_64__)
  out->pio = out->object.Get("pio");
  if (!out->pio.IsFunction() || !out->mmio.IsFunction()) { ThrowType(env, "dispatch.pio and dispatch.mmio must be functions"); return false; }
#else
  if (!out->mmio.IsFunction()) { ThrowType(env, "dispatch.mmio must be a function"); return false; }
#endif
  return true;
}

// run(dispatch, maxSliceMs (-1: none), immediateSliceMs) -> RunResult
Napi::Value VcpuHandle::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_env e = env;
  if (!CheckOpen(env)) return env.Undefined();
  if (running_.load()) { Napi::Error::New(env, "Vcpu.run is already active (re-entered from a callback?)").ThrowAsJavaScriptException(); return env.Undefined(); }
  DispatchHandlers dispatch;
  if (!ReadDispatch(info, "run", &dispatch)) return env.Undefined();
#if defined(__x86_64__)
  napi_value pio = dispatch.pio;
#endif
  RunOptions opt;
  if (info[1].IsNumber()) opt.maxSliceMs = info[1].As<Napi::Number>().Int64Value();
  if (info[2].IsNumber()) opt.immediateSliceMs = info[2].As<Napi::Number>().Int64Value();
  if (opt.immediateSliceMs < 0) opt.immediateSliceMs = 0;

  if (stopRequested_.exchange(false)) return ExitResult(env, "yield");

  napi_value recv = dispatch.object, mmio = dispatch.mmio;
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(e, &loop);
  EnsureKickSignal();
  if (!watcher_) watcher_.reset(new LoopWatcher());

  uv_update_time(loop);
  const uint64_t turn = LoopTurn(e, loop);
  const bool stale = turn != UINT64_MAX && turn == watcher_->lastRunTurn;
  watcher_->lastRunTurn = turn;
  // Fresh: the slice lasts until new work (fd readiness, watched by the watcher) or the loop's timeout.
  // Stale: the loop's readiness and timers are what the previous run already saw: a plain slice, no fd watch.
  int64_t timeout = stale ? opt.immediateSliceMs : SliceTimeoutMs(loop, opt.immediateSliceMs);
  if (opt.maxSliceMs >= 0 && (timeout < 0 || timeout > opt.maxSliceMs)) timeout = opt.maxSliceMs;
  const int64_t deadlineNs = timeout < 0 ? -1 : MonotonicNs() + timeout * 1000000;
  runThread_.store(pthread_self(), std::memory_order_seq_cst);
  run_->immediate_exit = 0;
  running_.store(true, std::memory_order_seq_cst);
  if (stopRequested_.load()) run_->immediate_exit = 1;  // a kick() raced with the arming above
  watcher_->Arm(stale ? -1 : uv_backend_fd(loop), deadlineNs, KickTarget{run_, &inKvmRun_, &runThread_});
  // The JS thread also checks the deadline itself between exits (a vDSO clock read, ~60 ns), so timers
  // stay on time during exit storms even when the watcher thread waits for a CPU on a busy host.

  uint32_t inScope = 0;
  napi_handle_scope scope;
  napi_open_handle_scope(e, &scope);
  const char* stop = nullptr;  // set -> return {reason: stop}
  bool special = false;        // internal error / fail entry / ... built after the loop
  bool failed = false;         // a JS exception or a thrown KvmError is pending

  while (!stop && !special && !failed) {
    int r = EnterGuest();
    if (r < 0) {
      if (run_->immediate_exit || stopRequested_.load()) stop = "yield";
      continue;
    }
    if (r > 0) {
      ThrowKvmError(env, "KVM_RUN", r);
      failed = true;
      break;
    }
    switch (run_->exit_reason) {
#if defined(__x86_64__)
      case KVM_EXIT_IO:
        if (!PortIoExit(e, recv, pio, &failed)) special = true;  // "unknown": an I/O exit we cannot trust
        break;
      case KVM_EXIT_HLT: stop = "hlt"; break;
#endif
      case KVM_EXIT_MMIO:
        if (!MmioExit(e, recv, mmio, &failed)) special = true;
        break;
      case KVM_EXIT_INTR:
        if (run_->immediate_exit || stopRequested_.load()) stop = "yield";
        break;
      default: special = true; break;
    }
    // Never over an exit that needs the machine (hlt, internal error, ...): that exit would be lost.
    if (!stop && !special && !failed && (stopRequested_.load() || (deadlineNs >= 0 && MonotonicNs() >= deadlineNs))) stop = "yield";
    if (++inScope == kExitsPerScope) {
      napi_close_handle_scope(e, scope);
      napi_open_handle_scope(e, &scope);
      inScope = 0;
    }
  }
  napi_close_handle_scope(e, scope);
  watcher_->Disarm();
  running_.store(false, std::memory_order_seq_cst);
  stopRequested_.store(false);
  run_->immediate_exit = 0;
  if (failed) return env.Undefined();
  if (stop) return ExitResult(env, stop);

  return FinalResult(env);
}

// The result of an exit that ends the run (not an exit a callback answered), from the run page.
Napi::Value VcpuHandle::FinalResult(Napi::Env env) {
  switch (run_->exit_reason) {
#if defined(__x86_64__)
    case KVM_EXIT_SHUTDOWN: {  // triple fault
      Napi::Object o = WithVcpu(ExitResult(env, "shutdown"), id_);
      SetProgramCounter(o);
      return o;
    }
#endif
    case KVM_EXIT_INTERNAL_ERROR: return InternalErrorResult(env);
    case KVM_EXIT_FAIL_ENTRY: {
      Napi::Object o = WithVcpu(ExitResult(env, "fail-entry"), id_);
      o.Set("code", Napi::BigInt::New(env, static_cast<uint64_t>(run_->fail_entry.hardware_entry_failure_reason)));
      SetProgramCounter(o);
      return o;
    }
    case KVM_EXIT_SYSTEM_EVENT: {
      Napi::Object o = WithVcpu(ExitResult(env, "system-event"), id_);
      o.Set("type", Napi::Number::New(env, run_->system_event.type));
#if defined(__aarch64__)
      // PSCI SYSTEM_OFF is SHUTDOWN, SYSTEM_RESET and SYSTEM_RESET2 are RESET (RESET2 sets bit 0 of flags).
      o.Set("flags", Napi::BigInt::New(env, static_cast<uint64_t>(run_->system_event.flags)));
#endif
      return o;
    }
    default: {
      Napi::Object o = WithVcpu(ExitResult(env, "unknown"), id_);
      o.Set("exitReason", Napi::Number::New(env, run_->exit_reason));
      SetProgramCounter(o);
      return o;
    }
  }
}

bool VcpuHandle::MmioExit(napi_env e, napi_value recv, napi_value mmio, bool* failed) {
  const uint32_t len = run_->mmio.len;
  if (len != 1 && len != 2 && len != 4 && len != 8) return false;
  const bool isWrite = run_->mmio.is_write;
  uint64_t v = isWrite ? LoadLe(run_->mmio.data, len) : 0;
  napi_value argv[5], result;
  napi_create_double(e, static_cast<double>(run_->mmio.phys_addr), &argv[0]);
  napi_create_uint32(e, len, &argv[1]);
  napi_get_boolean(e, isWrite, &argv[2]);
  napi_create_uint32(e, static_cast<uint32_t>(v), &argv[3]);
  napi_create_uint32(e, static_cast<uint32_t>(v >> 32), &argv[4]);
  if (napi_call_function(e, recv, mmio, 5, argv, &result) != napi_ok) { *failed = true; return true; }
  if (!isWrite) {
    if (!ReadResult(e, result, &v)) {
      ThrowType(Napi::Env(e), "dispatch.mmio must return a number or bigint for reads");
      *failed = true;
      return true;
    }
    StoreLe(run_->mmio.data, len, v);
  }
  return true;
}

}  // namespace kvmn
