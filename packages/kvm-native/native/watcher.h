// A helper thread that watches the Node event loop while the JS thread sits in KVM_RUN.
// While armed it polls libuv's backend fd (the epoll fd: readable as soon as any watched fd is) until the
// slice's deadline; when the loop has new work or the deadline passes it kicks the vCPU at once:
// immediate_exit = 1 first, then a real-time signal.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <linux/kvm.h>
#include <mutex>
#include <pthread.h>
#include <thread>

namespace kvmn {

struct KickTarget {
  kvm_run* run;
  std::atomic<int>* inKvmRun;
  // Read only once inKvmRun says the thread is inside KVM_RUN (it is set before inKvmRun).
  const std::atomic<pthread_t>* thread;
};

// immediate_exit before the signal, so a kick that lands between two KVM_RUNs is not lost.
void KickNow(const KickTarget& t);

class LoopWatcher {
 public:
  LoopWatcher();
  ~LoopWatcher();
  // deadlineNs (CLOCK_MONOTONIC) < 0: no deadline (only loop activity kicks). backendFd < 0: deadline only.
  void Arm(int backendFd, int64_t deadlineNs, const KickTarget& target);
  void Disarm();
  bool kicked() const { return kicked_.load(std::memory_order_acquire); }
  // The event-loop turn during which this vCPU's previous run started (JS thread only).
  uint64_t lastRunTurn = UINT64_MAX;

 private:
  void Main();

  std::thread thread_;
  int wakeFd_ = -1;
  std::mutex mu_;
  bool quit_ = false;
  bool armed_ = false;
  uint64_t generation_ = 0;
  int backendFd_ = -1;
  int64_t deadlineNs_ = -1;  // CLOCK_MONOTONIC, -1: none
  KickTarget target_{};
  std::atomic<bool> kicked_{false};
};

}  // namespace kvmn
