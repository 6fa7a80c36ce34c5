// KVM_RUN on a thread of the vCPU's own, so that several vCPUs run in parallel. Exits the kernel and the native
// fast paths answer (in-kernel irqchip, ioeventfd, the PM timer) never leave the thread; an exit that needs a
// dispatch callback is handed to the JS thread through a thread-safe function, and the vCPU thread waits for the
// answer (spinning briefly, then on a futex) before it re-enters KVM_RUN. startThread's promise settles once the
// thread has ended: kicked ("yield"), or an exit that needs the machine.
#include "exit-values.h"
#include "vcpu.h"
#include "watcher.h"
#include <cerrno>
#include <csignal>
#include <ctime>
#include <linux/futex.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <uv.h>

namespace kvmn {

namespace {
// The hand-off word: the vCPU thread sets kPending before handing an exit over and kSleeping before it sleeps on
// the futex; the JS thread sets kAnswered and wakes it only when it sleeps.
constexpr uint32_t kAnswered = 0, kPending = 1, kSleeping = 2;

inline void CpuRelax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#else
  __asm__ volatile("yield");
#endif
}

long Futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, nullptr, nullptr, 0);
}
}  // namespace

struct VcpuThread {
  VcpuHandle* handle;  // null once the handle is finalized
  std::thread thread;
  napi_threadsafe_function tsfn = nullptr;
  napi_ref dispatch = nullptr, pio = nullptr, mmio = nullptr;  // JS thread only
  napi_deferred deferred = nullptr;
  int64_t spinNs = 0;
  std::atomic<uint32_t> answer{kAnswered};
  std::atomic<uint64_t> pending{0};  // the sequence number of the exit waiting for JS; 0: none
  uint64_t seq = 0;                  // vCPU thread only
  std::atomic<bool> abandoned{false};
  std::atomic<bool> finished{false};
  bool servicing = false;            // JS thread: inside this thread's exit callback
  std::atomic<bool> jsStaying{false};  // the JS thread waits for this thread's next exit (ServiceExits)
  uint64_t stayTurn = 0;               // JS thread: the event-loop turn (uv_now) the stays below belong to
  int64_t stayedNs = 0;                // JS thread: time spent waiting for exits during that turn
  // Set by the JS thread before it answers (the answer word orders them): a callback threw (error holds the
  // exception), or the exit could not be trusted.
  bool failed = false, untrusted = false;
  napi_ref error = nullptr;
  // The thread's outcome, written before `finished`.
  const char* stop = nullptr;  // "yield" or "hlt"; null: FinalResult, or kvmErrno
  int kvmErrno = 0;
};

namespace {
struct Message {
  std::shared_ptr<VcpuThread> thread;
  uint64_t seq;  // 0: the thread has ended
};

void Answer(VcpuThread* t) {
  if (t->answer.exchange(kAnswered, std::memory_order_seq_cst) == kSleeping) Futex(&t->answer, FUTEX_WAKE_PRIVATE, 1);
}

// vCPU thread: waits for the JS thread's answer; false when the thread must end instead (abandoned, a callback
// threw, an exit that cannot be trusted).
bool AwaitAnswer(VcpuThread* t) {
  const int64_t spinUntil = t->spinNs > 0 ? MonotonicNs() + t->spinNs : 0;
  uint32_t spins = 0;
  for (;;) {
    uint32_t a = t->answer.load(std::memory_order_acquire);
    if (a == kAnswered) break;
    if (t->abandoned.load(std::memory_order_seq_cst)) return false;
    if (spinUntil != 0 && ((++spins & 63) != 0 || MonotonicNs() < spinUntil)) {
      CpuRelax();
      continue;
    }
    if (a == kPending && !t->answer.compare_exchange_strong(a, kSleeping, std::memory_order_seq_cst)) continue;
    Futex(&t->answer, FUTEX_WAIT_PRIVATE, kSleeping);
  }
  return !t->abandoned.load(std::memory_order_seq_cst) && !t->failed && !t->untrusted;
}

bool Post(VcpuThread* t, std::shared_ptr<VcpuThread> self, uint64_t seq) {
  auto* m = new Message{std::move(self), seq};
  if (napi_call_threadsafe_function(t->tsfn, m, napi_tsfn_nonblocking) == napi_ok) return true;
  delete m;
  return false;
}
}  // namespace

// startThread(dispatch, spinNs) -> Promise<RunResult>
Napi::Value VcpuHandle::StartThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_env e = env;
  if (!CheckOpen(env)) return env.Undefined();
  if (running_.load() || thread_) { Napi::Error::New(env, "Vcpu.run or a vCPU thread is already active").ThrowAsJavaScriptException(); return env.Undefined(); }
  DispatchHandlers dispatch;
  if (!ReadDispatch(info, "startThread", &dispatch)) return env.Undefined();
  auto t = std::make_shared<VcpuThread>();
  t->handle = this;
  if (info[1].IsNumber()) t->spinNs = info[1].As<Napi::Number>().Int64Value();
  napi_value name, promise;
  napi_create_string_utf8(e, "vcpu-thread", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(e, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr, ThreadCallJs, &t->tsfn) != napi_ok) {
    Napi::Error::New(env, "could not create the vCPU thread's thread-safe function").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  napi_create_reference(e, dispatch.object, 1, &t->dispatch);
  napi_create_reference(e, dispatch.mmio, 1, &t->mmio);
#if defined(__x86_64__)
  napi_create_reference(e, dispatch.pio, 1, &t->pio);
#endif
  napi_create_promise(e, &t->deferred, &promise);

  run_->immediate_exit = stopRequested_.load() ? 1 : 0;  // a kick before the start makes it end at once
  running_.store(true, std::memory_order_seq_cst);
  thread_ = t;
  // The thread takes no process signals (Node's are the JS thread's); it unblocks only the kick signal itself.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  t->thread = std::thread(&VcpuHandle::ThreadMain, this, t.get());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return Napi::Value(env, promise);
}

void VcpuHandle::ThreadMain(VcpuThread* t) {
  runThread_.store(pthread_self(), std::memory_order_seq_cst);
  EnsureKickSignal();
  const char* stop = nullptr;
  int kvmErrno = 0;
  while (!stop) {
    if (stopRequested_.load()) { stop = "yield"; break; }
    int r = EnterGuest();
    if (r < 0) {
      if (run_->immediate_exit || stopRequested_.load()) stop = "yield";
      continue;
    }
    if (r > 0) {
      kvmErrno = r;
      break;
    }
    bool handOff = false;
    switch (run_->exit_reason) {
#if defined(__x86_64__)
      case KVM_EXIT_IO: handOff = !PmTimerRead(); break;
      case KVM_EXIT_HLT: stop = "hlt"; break;
#endif
      case KVM_EXIT_MMIO: handOff = true; break;
      case KVM_EXIT_INTR:
        if (run_->immediate_exit || stopRequested_.load()) stop = "yield";
        break;
      default: break;
    }
    if (stop) break;
#if defined(__x86_64__)
    const bool answered = run_->exit_reason == KVM_EXIT_IO || run_->exit_reason == KVM_EXIT_MMIO || run_->exit_reason == KVM_EXIT_INTR;
#else
    const bool answered = run_->exit_reason == KVM_EXIT_MMIO || run_->exit_reason == KVM_EXIT_INTR;
#endif
    if (!answered) break;  // an exit that needs the machine: FinalResult reads it
    if (handOff) {
      const uint64_t seq = ++t->seq;
      t->answer.store(kPending, std::memory_order_seq_cst);
      t->pending.store(seq, std::memory_order_seq_cst);
      // AbandonThread sets `abandoned` before it answers: either it is seen here or its answer comes after kPending.
      if (t->abandoned.load(std::memory_order_seq_cst) || (!t->jsStaying.load(std::memory_order_seq_cst) && !Post(t, thread_, seq)) ||
          !AwaitAnswer(t)) {
        if (t->untrusted) break;  // "unknown", from the run page
        stop = "yield";           // abandoned (the machine is closing) or a callback threw (error settles it)
        break;
      }
    }
    // Never over an exit that needs the machine (above): that exit would be lost.
    if (stopRequested_.load()) stop = "yield";
  }
  t->stop = stop;
  t->kvmErrno = kvmErrno;
  stopRequested_.store(false);
  run_->immediate_exit = 0;
  t->finished.store(true, std::memory_order_seq_cst);
  Post(t, thread_, 0);
  napi_release_threadsafe_function(t->tsfn, napi_tsfn_release);
}

void VcpuHandle::ThreadCallJs(napi_env env, napi_value, void*, void* data) {
  std::unique_ptr<Message> m(static_cast<Message*>(data));
  VcpuThread* t = m->thread.get();
  if (env == nullptr) return;  // the environment is going away
  if (m->seq != 0) {
    if (t->handle) t->handle->ServiceExits(env, t, m->seq);
    return;
  }
  if (t->thread.joinable()) t->thread.join();
  if (t->handle) {
    t->handle->SettleThread(env, t);
  } else if (t->deferred) {  // closed or finalized while running: the thread was stopped
    napi_value result, reason;
    napi_create_object(env, &result);
    napi_create_string_utf8(env, "yield", NAPI_AUTO_LENGTH, &reason);
    napi_set_named_property(env, result, "reason", reason);
    napi_resolve_deferred(env, t->deferred, result);
  }
  for (napi_ref* r : {&t->dispatch, &t->pio, &t->mmio, &t->error}) {
    if (*r) napi_delete_reference(env, *r);
    *r = nullptr;
  }
}

// Exit storms: the vCPU's next exit usually comes within microseconds of the answer. With spinNs, the JS thread
// waits that long for it and answers it here, which saves the event loop's wake-up (tens of µs on this host) for
// each; at most kJsStayNs per event-loop turn, so that the loop still turns.
static const int64_t kJsStayNs = 1000000;

void VcpuHandle::ServiceExits(napi_env e, VcpuThread* t, uint64_t seq) {
  if (!ServiceExit(e, t, seq) || t->spinNs <= 0) return;
  // Node runs up to 1000 queued calls per wake-up: the budget is per event-loop turn (uv_now changes every turn),
  // not per call, so timers and I/O wait at most about kJsStayNs for this vCPU.
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(e, &loop);
  const uint64_t turn = loop ? uv_now(loop) : 0;
  if (turn != t->stayTurn) {
    t->stayTurn = turn;
    t->stayedNs = 0;
  }
  if (t->stayedNs >= kJsStayNs) return;
  const int64_t stayStart = MonotonicNs();
  const int64_t stayUntil = stayStart + kJsStayNs - t->stayedNs;
  int64_t idleUntil = MonotonicNs() + t->spinNs;
  // While the JS thread stays, the vCPU thread posts no message for its exits (they would only come back stale).
  t->jsStaying.store(true, std::memory_order_seq_cst);
  for (;;) {
    const bool over = t->handle != this || t->failed || t->finished.load() || t->abandoned.load();
    const uint64_t next = t->pending.load(std::memory_order_seq_cst);
    const int64_t now = MonotonicNs();
    if (!over && next != 0 && now < stayUntil) {
      napi_handle_scope scope;
      napi_open_handle_scope(e, &scope);
      ServiceExit(e, t, next);
      napi_close_handle_scope(e, scope);
      idleUntil = now + t->spinNs;
      continue;
    }
    if (!over && next == 0 && now < idleUntil && now < stayUntil) {
      CpuRelax();
      continue;
    }
    break;
  }
  // Leaving: the vCPU thread posts again from here on. An exit it made without posting, before it saw that, is
  // pending now and answered here (the two seq_cst stores and loads cannot both miss each other).
  t->jsStaying.store(false, std::memory_order_seq_cst);
  const uint64_t last = t->pending.load(std::memory_order_seq_cst);
  if (last != 0 && t->handle == this) ServiceExit(e, t, last);
  t->stayedNs += MonotonicNs() - stayStart;
}

bool VcpuHandle::ServiceExit(napi_env e, VcpuThread* t, uint64_t seq) {
  if (t->abandoned.load() || seq == 0 || t->pending.load() != seq) return false;  // answered already, or abandoned
  t->pending.store(0);
  napi_value recv, fn;
  napi_get_reference_value(e, t->dispatch, &recv);
  bool failed = false, trusted = true;
  t->servicing = true;
#if defined(__x86_64__)
  if (run_->exit_reason == KVM_EXIT_IO) {
    napi_get_reference_value(e, t->pio, &fn);
    trusted = PortIoExit(e, recv, fn, &failed);
  } else
#endif
  {
    napi_get_reference_value(e, t->mmio, &fn);
    trusted = MmioExit(e, recv, fn, &failed);
  }
  t->servicing = false;
  if (failed) {
    napi_value exception;
    if (napi_get_and_clear_last_exception(e, &exception) == napi_ok) napi_create_reference(e, exception, 1, &t->error);
    t->failed = true;
  }
  t->untrusted = !trusted;
  Answer(t);
  return true;
}

void VcpuHandle::SettleThread(napi_env e, VcpuThread* t) {
  Napi::Env env(e);
  if (thread_.get() == t) {
    thread_.reset();
    running_.store(false, std::memory_order_seq_cst);
  }
  napi_value v;
  if (t->error) {
    napi_get_reference_value(e, t->error, &v);
    napi_reject_deferred(e, t->deferred, v);
  } else if (t->kvmErrno != 0) {
    ThrowKvmError(env, "KVM_RUN", t->kvmErrno);
    napi_get_and_clear_last_exception(e, &v);
    napi_reject_deferred(e, t->deferred, v);
  } else if (t->stop) {
    napi_resolve_deferred(e, t->deferred, ExitResult(env, t->stop));
  } else {
    napi_resolve_deferred(e, t->deferred, FinalResult(env));
  }
  t->deferred = nullptr;
}

// stopThread() -> true once the thread has ended (joined); false when called from this vCPU's own exit callback,
// where the thread ends right after that exit.
Napi::Value VcpuHandle::StopThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VcpuThread* t = thread_.get();
  if (!t || !t->thread.joinable()) return Napi::Boolean::New(env, true);
  Kick();
  if (t->servicing) return Napi::Boolean::New(env, false);
  // The thread may be waiting for an exit's answer, and this thread is the one to give it: answer it here.
  while (!t->finished.load(std::memory_order_seq_cst)) {
    uint64_t seq = t->pending.load();
    if (seq != 0) {
      ServiceExit(env, t, seq);
      continue;
    }
    timespec ts{0, 20000};
    nanosleep(&ts, nullptr);
  }
  t->thread.join();
  return Napi::Boolean::New(env, true);
}

void VcpuHandle::AbandonThread() {
  VcpuThread* t = thread_.get();
  if (!t) return;
  t->handle = nullptr;  // its promise settles as "yield" without this handle (closed, or being finalized)
  t->abandoned.store(true, std::memory_order_seq_cst);
  stopRequested_.store(true, std::memory_order_seq_cst);
  if (run_) KickNow(KickTarget{run_, &inKvmRun_, &runThread_});
  Answer(t);
  if (t->thread.joinable()) t->thread.join();
  thread_.reset();
  running_.store(false, std::memory_order_seq_cst);
}

}  // namespace kvmn
