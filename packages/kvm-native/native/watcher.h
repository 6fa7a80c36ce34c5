// A helper thread that watches the Node event loop while the JS thread sits in KVM_RUN.
// While armed it polls libuv's backend fd with libuv's timeout; when the loop has work (or the
// slice is over) it kicks the vCPU: immediate_exit = 1 first, then a real-time signal.
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
  pthread_t thread;
};

// immediate_exit before the signal, so a kick that lands between two KVM_RUNs is not lost.
void KickNow(const KickTarget& t);

class LoopWatcher {
 public:
  LoopWatcher();
  ~LoopWatcher();
  // timeoutMs < 0: no deadline (only loop activity kicks). minSliceMs: the guest runs at least this long.
  void Arm(int backendFd, int64_t timeoutMs, int64_t minSliceMs, const KickTarget& target);
  void Disarm();
  bool kicked() const { return kicked_.load(std::memory_order_acquire); }

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
  int64_t earliestNs_ = 0;   // no kick before this (minimum slice)
  KickTarget target_{};
  std::atomic<bool> kicked_{false};
};

}  // namespace kvmn
