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

static int PollMs(int64_t untilNs) {
  if (untilNs < 0) return -1;
  int64_t left = untilNs - NowNs();
  if (left <= 0) return 0;
  return static_cast<int>((left + 999999) / 1000000);
}

void KickNow(const KickTarget& t) {
  reinterpret_cast<volatile uint8_t*>(&t.run->immediate_exit)[0] = 1;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (t.inKvmRun->load(std::memory_order_seq_cst)) pthread_kill(t.thread, KickSignal());
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

void LoopWatcher::Arm(int backendFd, int64_t timeoutMs, int64_t minSliceMs, const KickTarget& target) {
  int64_t now = NowNs();
  {
    std::lock_guard<std::mutex> l(mu_);
    armed_ = true;
    generation_++;
    backendFd_ = backendFd;
    deadlineNs_ = timeoutMs < 0 ? -1 : now + timeoutMs * 1000000;
    earliestNs_ = now + minSliceMs * 1000000;
    if (deadlineNs_ >= 0 && deadlineNs_ < earliestNs_) deadlineNs_ = earliestNs_;
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
    int64_t deadline, earliest;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (quit_) return;
      armed = armed_;
      gen = generation_;
      backend = backendFd_;
      deadline = deadlineNs_;
      earliest = earliestNs_;
    }
    if (!armed) {
      pollfd p{wakeFd_, POLLIN, 0};
      poll(&p, 1, -1);
      (void)!read(wakeFd_, &drained, sizeof drained);
      continue;
    }
    pollfd p[2] = {{wakeFd_, POLLIN, 0}, {backend, POLLIN, 0}};
    int r = poll(p, 2, PollMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (p[0].revents & POLLIN) {  // re-armed, disarmed or quitting: reload the state
      (void)!read(wakeFd_, &drained, sizeof drained);
      continue;
    }
    // The loop has work or the deadline passed; honour the minimum slice, unless re-armed meanwhile.
    if (PollMs(earliest) > 0) {
      pollfd w{wakeFd_, POLLIN, 0};
      if (poll(&w, 1, PollMs(earliest)) > 0) continue;
    }
    std::lock_guard<std::mutex> l(mu_);
    if (armed_ && generation_ == gen) {
      kicked_.store(true, std::memory_order_release);
      KickNow(target_);
      armed_ = false;
    }
  }
}

}  // namespace kvmn
