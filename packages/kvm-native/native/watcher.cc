#include "watcher.h"
#include "vcpu.h"
#include <cerrno>
#include <csignal>
#include <ctime>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace kvmn {

static int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Waits until `untilNs` (< 0: forever) with nanosecond precision, so a slice ends on its deadline, not
// on the next whole millisecond.
static int PollUntil(pollfd* fds, nfds_t n, int64_t untilNs) {
  if (untilNs < 0) return ppoll(fds, n, nullptr, nullptr);
  int64_t left = untilNs - NowNs();
  if (left < 0) left = 0;
  timespec ts{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
  return ppoll(fds, n, &ts, nullptr);
}

void KickNow(const KickTarget& t) {
  reinterpret_cast<volatile uint8_t*>(&t.run->immediate_exit)[0] = 1;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (t.inKvmRun->load(std::memory_order_seq_cst)) pthread_kill(t.thread->load(std::memory_order_seq_cst), KickSignal());
}

LoopWatcher::LoopWatcher() {
  wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  // The thread must not take the kick signal (it is aimed at the JS thread only) nor others.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] { Main(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

LoopWatcher::~LoopWatcher() {
  {
    std::lock_guard<std::mutex> l(mu_);
    quit_ = true;
  }
  uint64_t one = 1;
  (void)!write(wakeFd_, &one, sizeof one);
  thread_.join();
  close(wakeFd_);
}

void LoopWatcher::Arm(int backendFd, int64_t deadlineNs, const KickTarget& target) {
  {
    std::lock_guard<std::mutex> l(mu_);
    armed_ = true;
    generation_++;
    backendFd_ = backendFd;
    deadlineNs_ = deadlineNs;
    target_ = target;
    kicked_.store(false, std::memory_order_release);
  }
  uint64_t one = 1;
  (void)!write(wakeFd_, &one, sizeof one);
}

void LoopWatcher::Disarm() {
  std::lock_guard<std::mutex> l(mu_);
  armed_ = false;
}

void LoopWatcher::Main() {
  uint64_t drained;
  for (;;) {
    bool armed;
    uint64_t gen;
    int backend;
    int64_t deadline;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (quit_) return;
      armed = armed_;
      gen = generation_;
      backend = backendFd_;
      deadline = deadlineNs_;
    }
    if (!armed) {
      pollfd p{wakeFd_, POLLIN, 0};
      poll(&p, 1, -1);
      (void)!read(wakeFd_, &drained, sizeof drained);
      continue;
    }
    pollfd p[2] = {{wakeFd_, POLLIN, 0}, {backend, POLLIN, 0}};
    int r = PollUntil(p, 2, deadline);
    if (r < 0 && errno == EINTR) continue;
    if (p[0].revents & POLLIN) {  // re-armed, disarmed or quitting: reload the state
      (void)!read(wakeFd_, &drained, sizeof drained);
      continue;
    }
    // The loop has new work or the deadline passed: kick now, unless re-armed meanwhile.
    std::lock_guard<std::mutex> l(mu_);
    if (armed_ && generation_ == gen) {
      kicked_.store(true, std::memory_order_release);
      KickNow(target_);
      armed_ = false;
    }
  }
}

}  // namespace kvmn
