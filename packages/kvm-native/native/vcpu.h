// A vCPU fd with its mmap'd run page. Shared: lifetime, MP state (vcpu.cc) and KVM_RUN (run-loop.cc); the
// register and state ioctls are the host architecture's (x86-vcpu.cc, arm64-vcpu.cc).
#pragma once
#include "common.h"
#include <atomic>
#include <linux/kvm.h>
#include <memory>
#include <pthread.h>
#include <sys/ioctl.h>
#include <cerrno>
#include <vector>

namespace kvmn {

class LoopWatcher;
struct VcpuThread;  // vcpu-thread.cc

class VcpuHandle : public Napi::ObjectWrap<VcpuHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit VcpuHandle(const Napi::CallbackInfo& info);  // (vcpuFd, mmapSize, id)
  ~VcpuHandle() override;

  // Makes the current KVM_RUN (or the next one) return: immediate_exit first, then the signal.
  void Kick();

 private:
  using Method = Napi::ClassPropertyDescriptor<VcpuHandle>;
  // Appends the architecture's instance methods to the shared ones.
  static void AddArchMethods(std::vector<Method>* methods);

  Napi::Value Run(const Napi::CallbackInfo& info);
  // KVM_RUN on a thread of its own (vcpu-thread.cc): exits that need JS are handed to the JS thread.
  Napi::Value StartThread(const Napi::CallbackInfo& info);
  Napi::Value StopThread(const Napi::CallbackInfo& info);
  void ThreadMain(VcpuThread* t);
  // JS thread: answers the exit the vCPU thread handed over as `seq`; false when it is not the pending one.
  bool ServiceExit(napi_env env, VcpuThread* t, uint64_t seq);
  // ServiceExit, then (with spinUs) the exits that follow within spinUs of each answer, for at most 1 ms.
  void ServiceExits(napi_env env, VcpuThread* t, uint64_t seq);
  // JS thread: settles the thread's promise once the thread has ended.
  void SettleThread(napi_env env, VcpuThread* t);
  // Ends the vCPU thread without waiting for JS (close, finalizer): a pending exit stays unanswered.
  void AbandonThread();
  static void ThreadCallJs(napi_env env, napi_value, void*, void* data);
  Napi::Value RequestStop(const Napi::CallbackInfo& info);
  Napi::Value KickJs(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetMpState(const Napi::CallbackInfo& info);
  Napi::Value SetMpState(const Napi::CallbackInfo& info);
  Napi::Value StatsFd(const Napi::CallbackInfo& info);

  bool CheckOpen(Napi::Env env);
  Napi::Value ExitResult(Napi::Env env, const char* reason);
  Napi::Value InternalErrorResult(Napi::Env env);
  // The result of an exit that ends the run (hlt aside), read from the run page.
  Napi::Value FinalResult(Napi::Env env);
  // A KVM_EXIT_MMIO exit: one dispatch.mmio call. False when the exit cannot be trusted; *failed when a JS
  // exception is pending.
  bool MmioExit(napi_env env, napi_value recv, napi_value mmio, bool* failed);
  // Adds the exact program counter to a result that ends the run: "rip" on x86, "pc" on arm64 (undefined
  // when it cannot be read).
  void SetProgramCounter(Napi::Object result);

#if defined(__x86_64__)
  Napi::Value GetRegs(const Napi::CallbackInfo& info);
  Napi::Value SetRegs(const Napi::CallbackInfo& info);
  Napi::Value GetSregs(const Napi::CallbackInfo& info);
  Napi::Value SetSregs(const Napi::CallbackInfo& info);
  Napi::Value GetFpu(const Napi::CallbackInfo& info);
  Napi::Value SetFpu(const Napi::CallbackInfo& info);
  Napi::Value GetMsrs(const Napi::CallbackInfo& info);
  Napi::Value SetMsrs(const Napi::CallbackInfo& info);
  Napi::Value SetCpuid(const Napi::CallbackInfo& info);
  Napi::Value GetLapic(const Napi::CallbackInfo& info);
  Napi::Value SetLapic(const Napi::CallbackInfo& info);
  Napi::Value SetPmTimer(const Napi::CallbackInfo& info);
  // The state a snapshot saves (x86-vcpu.cc): XSAVE area, XCRs, TSC frequency, and the fixed-size structs
  // passed as opaque bytes (kByteStates: vCPU events, debug registers), one template instance per entry.
  Napi::Value GetXsave(const Napi::CallbackInfo& info);
  Napi::Value SetXsave(const Napi::CallbackInfo& info);
  Napi::Value GetXcrs(const Napi::CallbackInfo& info);
  Napi::Value SetXcrs(const Napi::CallbackInfo& info);
  Napi::Value GetTscKhz(const Napi::CallbackInfo& info);
  Napi::Value SetTscKhz(const Napi::CallbackInfo& info);
  template <size_t K> Napi::Value GetBytes(const Napi::CallbackInfo& info);
  template <size_t K> Napi::Value SetBytes(const Napi::CallbackInfo& info);
  // A KVM_EXIT_IO exit (x86-port-io-exit.cc): answered by the PM timer or one dispatch.pio call per element.
  // False when the kernel's exit cannot be trusted (the run reports "unknown"); *failed when a JS exception
  // is pending.
  bool PortIoExit(napi_env env, napi_value recv, napi_value pio, bool* failed);
  // Answers a read of the PM timer in the run page; false when the exit is not one.
  bool PmTimerRead();

  // An ACPI PM timer answered here, without a call into JS (0: none): Linux calibrates the TSC against it with
  // back-to-back port reads whose total time must stay under a bound, so its reads are a measured hot path.
  uint32_t pmTimerPort_ = 0;
  int64_t pmTimerStartNs_ = 0;
#elif defined(__aarch64__)
  Napi::Value Init(const Napi::CallbackInfo& info);
  Napi::Value GetOneReg(const Napi::CallbackInfo& info);
  Napi::Value SetOneReg(const Napi::CallbackInfo& info);
  Napi::Value GetRegList(const Napi::CallbackInfo& info);
#endif

  // One KVM_RUN, marked for the kicker: 0 after an exit, -1 when it was interrupted (EINTR/EAGAIN: a kick or a
  // signal), else the errno. Both run loops (run() on the JS thread, a vCPU's own thread) enter the guest here.
  int EnterGuest() {
    inKvmRun_.store(1, std::memory_order_seq_cst);
    int r = ioctl(fd_, KVM_RUN, 0UL);
    int err = errno;
    inKvmRun_.store(0, std::memory_order_seq_cst);
    if (r >= 0) return 0;
    return err == EINTR || err == EAGAIN ? -1 : err;
  }

  int fd_ = -1;
  uint32_t id_ = 0;
  size_t mmapSize_ = 0;
  kvm_run* run_ = nullptr;
  std::atomic<int> inKvmRun_{0};      // set around the KVM_RUN ioctl; the kicker signals only then
  std::atomic<bool> stopRequested_{false};
  std::atomic<bool> running_{false};
  std::atomic<pthread_t> runThread_{};  // the thread inside run(): the JS thread, or the vCPU's own
  std::unique_ptr<LoopWatcher> watcher_;
  std::shared_ptr<VcpuThread> thread_;  // set from startThread until its promise settles
};

// A dispatch object's exit handlers, as run() and startThread() take it (info[0]): `pio` on x86_64 only.
struct DispatchHandlers {
  Napi::Object object;
  Napi::Value mmio;
  Napi::Value pio;
};
// Reads and checks info[0]'s handlers; false after throwing a TypeError naming `caller`.
bool ReadDispatch(const Napi::CallbackInfo& info, const char* caller, DispatchHandlers* out);

// The real-time signal used to interrupt KVM_RUN (SIGUSR1 belongs to Node's inspector).
int KickSignal();
void EnsureKickSignal();

}  // namespace kvmn
