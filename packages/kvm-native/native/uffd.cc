// Demand paging through userfaultfd (lazy snapshot restore), both architectures: the uffd calls (creation,
// UFFDIO_API, UFFDIO_REGISTER/UNREGISTER: one each) and UserfaultPagerHandle, whose threads serve each missing
// page of the registered guest RAM from its snapshot file, plus the background population. The order of the
// calls, the creation fallback and the lifetime rules are TypeScript's (src/userfault.ts).
#include "common.h"
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <linux/userfaultfd.h>
#include <memory>
#include <poll.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef USERFAULTFD_IOC_NEW  // Linux 6.1; older headers lack it
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

namespace kvmn {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPopulateChunk = 64 * kPage;  // read and copied per step of populate()
constexpr int kMaxAgain = 1000;                  // EAGAIN retries (the address space was changing) per copy

// A page-aligned Uint8Array's address range; false (and a RangeError) otherwise.
bool PageRange(Napi::Env env, Napi::Value v, uffdio_range* out) {
  if (!v.IsTypedArray()) { ThrowType(env, "memory must be a Uint8Array"); return false; }
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  out->start = reinterpret_cast<uintptr_t>(static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset());
  out->len = t.ByteLength();
  if (out->len == 0 || out->start % kPage || out->len % kPage) {
    ThrowRange(env, "userfaultfd memory must be page aligned, a non-empty multiple of 4096 bytes (Vm.allocateMemory/allocateRam)");
    return false;
  }
  return true;
}

// userfaultfdCreate() -> fd: the userfaultfd(2) system call (close-on-exec, non-blocking).
Napi::Value UserfaultfdCreate(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0) { ThrowKvmError(info.Env(), "userfaultfd", errno); return info.Env().Undefined(); }
  return Napi::Number::New(info.Env(), fd);
}

// userfaultfdCreateFromDevice(path) -> fd: USERFAULTFD_IOC_NEW on /dev/userfaultfd (Linux 6.1; access is the
// device node's permission, not vm.unprivileged_userfaultfd).
Napi::Value UserfaultfdCreateFromDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) { ThrowType(env, "path must be a string"); return env.Undefined(); }
  std::string path = info[0].As<Napi::String>();
  int dev = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (dev < 0) { ThrowKvmError(env, "open", errno); return env.Undefined(); }
  int fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
  int err = errno;
  close(dev);
  if (fd < 0) { ThrowKvmError(env, "USERFAULTFD_IOC_NEW", err); return env.Undefined(); }
  return Napi::Number::New(env, fd);
}

// uffdApi(fd, features) -> { features, ioctls: bigint }: the handshake (UFFDIO_API), once per uffd.
Napi::Value UffdApi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint64_t features;
  if (!ArgI32(info, 0, &fd) || !ArgU64(info, 1, &features)) return env.Undefined();
  uffdio_api a{};
  a.api = UFFD_API;
  a.features = features;
  if (!IoctlOrThrow(env, fd, UFFDIO_API, &a, "UFFDIO_API")) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("features", Napi::BigInt::New(env, static_cast<uint64_t>(a.features)));
  o.Set("ioctls", Napi::BigInt::New(env, static_cast<uint64_t>(a.ioctls)));
  return o;
}

// uffdRegister(fd, memory) -> the ioctls the range allows (bigint): UFFDIO_REGISTER in MISSING mode.
Napi::Value UffdRegister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uffdio_register r{};
  if (!ArgI32(info, 0, &fd) || !PageRange(env, info[1], &r.range)) return env.Undefined();
  r.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (!IoctlOrThrow(env, fd, UFFDIO_REGISTER, &r, "UFFDIO_REGISTER")) return env.Undefined();
  return Napi::BigInt::New(env, static_cast<uint64_t>(r.ioctls));
}

// uffdUnregister(fd, memory): UFFDIO_UNREGISTER; faults waiting on the range are woken and then fill normally.
Napi::Value UffdUnregister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uffdio_range r{};
  if (!ArgI32(info, 0, &fd) || !PageRange(env, info[1], &r)) return env.Undefined();
  IoctlOrThrow(env, fd, UFFDIO_UNREGISTER, &r, "UFFDIO_UNREGISTER");
  return env.Undefined();
}

// A registered range of guest RAM and where its bytes are in the snapshot file.
struct Region {
  uint64_t base;
  uint64_t len;
  int fd;           // the pager's own open file description of the caller's file (closed by Stop)
  uint64_t offset;  // file offset of byte 0 of the region
};

// A file description of our own for `fd` (its position is moved by SEEK_DATA in populate): the same file opened
// again through /proc, or a duplicate where that is refused.
int OwnFd(int fd) {
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  int own = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  return own >= 0 ? own : fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

// Reads `len` bytes at `off`; bytes past the end of the file read as zero. False on a read error (then all zero).
bool ReadFile(int fd, uint64_t off, uint8_t* buf, uint64_t len) {
  uint64_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, buf + got, len - got, static_cast<off_t>(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      memset(buf, 0, len);
      return false;
    }
    if (n == 0) break;
    got += static_cast<uint64_t>(n);
  }
  memset(buf + got, 0, len - got);
  return true;
}

bool AllZero(const uint8_t* p) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  for (uint64_t i = 0; i < kPage / 8; i++)
    if (w[i]) return false;
  return true;
}

// Starts a thread that takes no signals (process signals stay with Node's threads; the kick is aimed at the JS
// thread only).
std::thread QuietThread(std::function<void()> body) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::thread t(std::move(body));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

}  // namespace

// The handler threads of one uffd. They poll the uffd and a stop eventfd, read fault messages and serve each
// faulting page: UFFDIO_COPY of the file's page, UFFDIO_ZEROPAGE when it is all zero (a hole reads as zero).
// The uffd itself (API, registration, closing) belongs to the caller.
class UserfaultPagerHandle : public Napi::ObjectWrap<UserfaultPagerHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UserfaultPagerHandle",
                       {InstanceMethod("stats", &UserfaultPagerHandle::Stats),
                        InstanceMethod("populate", &UserfaultPagerHandle::Populate),
                        InstanceMethod("stop", &UserfaultPagerHandle::StopJs)});
  }

  // (uffd, regions: [{ memory: Uint8Array, fd, offset }], threads)
  explicit UserfaultPagerHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UserfaultPagerHandle>(info) {
    Napi::Env env = info.Env();
    int32_t uffd;
    uint32_t threads;
    if (!ArgI32(info, 0, &uffd) || !ArgU32(info, 2, &threads)) return;
    if (threads < 1 || threads > 64) { ThrowRange(env, "threads must be 1 to 64"); return; }
    if (!info[1].IsArray()) { ThrowType(env, "regions must be an array"); return; }
    Napi::Array a = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsObject()) { ThrowType(env, "a region must be { memory, fd, offset }"); return; }
      Napi::Object o = v.As<Napi::Object>();
      Region r{};
      uffdio_range range{};
      uint64_t fd;
      if (!PageRange(env, o.Get("memory"), &range) || !FieldU64(o, "fd", &fd, 0, true) ||
          !FieldU64(o, "offset", &r.offset, 0, true))
        return;
      if (fd > 0x7fffffff || r.offset > (1ull << 62)) { ThrowRange(env, "region fd or offset out of range"); return; }
      r.base = range.start;
      r.len = range.len;
      r.fd = OwnFd(static_cast<int>(fd));
      if (r.fd < 0) { ThrowKvmError(env, "dup", errno); return; }
      regions_.push_back(r);  // from here Stop() closes it
    }
    std::sort(regions_.begin(), regions_.end(), [](const Region& x, const Region& y) { return x.base < y.base; });
    for (size_t i = 1; i < regions_.size(); i++) {
      if (regions_[i - 1].base + regions_[i - 1].len > regions_[i].base) { ThrowRange(env, "userfaultfd regions overlap"); return; }
    }
    stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stopFd_ < 0) { ThrowKvmError(env, "eventfd", errno); return; }
    uffd_ = uffd;
    for (uint32_t i = 0; i < threads; i++) handlers_.push_back(QuietThread([this] { HandleFaults(); }));
  }

  ~UserfaultPagerHandle() override { Stop(); }

 private:
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("faults", Napi::Number::New(env, static_cast<double>(faults_.load())));
    o.Set("pagesCopied", Napi::Number::New(env, static_cast<double>(pagesCopied_.load())));
    o.Set("zeroPages", Napi::Number::New(env, static_cast<double>(zeroPages_.load())));
    o.Set("errors", Napi::Number::New(env, static_cast<double>(errors_.load())));
    return o;
  }

  // populate(done: (finished: boolean) => void): copies every page of the file that is not all zero and not yet
  // present, on a thread of its own; `done(true)` when all were, `done(false)` when stop() came first.
  Napi::Value Populate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) { ThrowType(env, "populate expects a callback"); return env.Undefined(); }
    if (uffd_ < 0 || populator_.joinable()) { Napi::Error::New(env, "populate: pager stopped or already populating").ThrowAsJavaScriptException(); return env.Undefined(); }
    Napi::ThreadSafeFunction done = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "uffd-populate", 0, 1);
    populator_ = QuietThread([this, done]() mutable {
      const bool finished = PopulateAll();
      done.BlockingCall([finished](Napi::Env env, Napi::Function cb) { cb.Call({Napi::Boolean::New(env, finished)}); });
      done.Release();
    });
    return env.Undefined();
  }

  Napi::Value StopJs(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }

  // Stops and joins every thread and closes the pager's files; idempotent. The uffd stays open (the caller's).
  void Stop() {
    stopping_.store(true);
    if (stopFd_ >= 0) {
      uint64_t one = 1;
      ssize_t w = write(stopFd_, &one, sizeof(one));  // level-triggered: every handler sees it
      (void)w;
    }
    for (auto& t : handlers_) t.join();
    handlers_.clear();
    if (populator_.joinable()) populator_.join();
    for (const Region& r : regions_) close(r.fd);
    regions_.clear();
    if (stopFd_ >= 0) close(stopFd_);
    stopFd_ = -1;
    uffd_ = -1;
  }

  const Region* Find(uint64_t addr) const {
    auto it = std::upper_bound(regions_.begin(), regions_.end(), addr, [](uint64_t a, const Region& r) { return a < r.base; });
    if (it == regions_.begin()) return nullptr;
    --it;
    return addr - it->base < it->len ? &*it : nullptr;
  }

  void HandleFaults() {
    pollfd fds[2] = {{uffd_, POLLIN, 0}, {stopFd_, POLLIN, 0}};
    uffd_msg msgs[16];
    std::unique_ptr<uint64_t[]> page(new uint64_t[kPage / 8]);
    for (;;) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        errors_++;
        return;
      }
      if (fds[1].revents) return;
      if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
        errors_++;
        return;
      }
      if (!(fds[0].revents & POLLIN)) continue;
      ssize_t n = read(uffd_, msgs, sizeof(msgs));  // another handler may have taken them: EAGAIN
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        errors_++;
        return;
      }
      for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof(uffd_msg)); i++) {
        if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
        faults_++;
        ServeFault(msgs[i].arg.pagefault.address & ~(kPage - 1), reinterpret_cast<uint8_t*>(page.get()));
      }
    }
  }

  // One faulting page, from its region's file range only. A fault outside every region cannot happen (only
  // regions are registered) but would be counted and answered with zeros rather than left hanging.
  void ServeFault(uint64_t addr, uint8_t* buf) {
    const Region* r = Find(addr);
    if (!r) {
      errors_++;
      if (!Zero(addr)) Wake(addr);
      return;
    }
    // addr - base < len and len is whole pages, so the page lies inside [offset, offset + len) of the file.
    if (!ReadFile(r->fd, r->offset + (addr - r->base), buf, kPage)) errors_++;  // the guest sees zeros there
    if (AllZero(buf)) Zero(addr);
    else Copy(addr, buf, kPage);
  }

  void Wake(uint64_t addr) {
    uffdio_range r{addr, kPage};
    ioctl(uffd_, UFFDIO_WAKE, &r);
  }

  // UFFDIO_ZEROPAGE of one page; EEXIST (another thread served it) wakes the faulting thread instead.
  bool Zero(uint64_t addr) {
    for (int again = 0; again < kMaxAgain; again++) {
      uffdio_zeropage z{};
      z.range = {addr, kPage};
      zeroPages_++;  // before: the ioctl wakes the faulting thread, whose next stats() must count the page
      if (ioctl(uffd_, UFFDIO_ZEROPAGE, &z) == 0) return true;
      zeroPages_--;
      if (errno == EAGAIN) continue;
      if (errno == EEXIST) {
        Wake(addr);
        return true;
      }
      break;
    }
    errors_++;
    Wake(addr);
    return false;
  }

  // UFFDIO_COPY of `len` bytes at `addr`; pages already present (EEXIST: a fault handler or populate got there
  // first) are skipped and woken.
  void Copy(uint64_t addr, const uint8_t* src, uint64_t len) {
    int again = 0;
    while (len > 0) {
      uffdio_copy c{};
      c.dst = addr;
      c.src = reinterpret_cast<uintptr_t>(src);
      c.len = len;
      pagesCopied_ += len / kPage;  // before: the ioctl wakes the faulting thread (see Zero)
      if (ioctl(uffd_, UFFDIO_COPY, &c) == 0) return;
      const int err = errno;
      const uint64_t copied = c.copy > 0 ? static_cast<uint64_t>(c.copy) : 0;
      pagesCopied_ -= (len - copied) / kPage;
      uint64_t skip = kPage;
      if (copied > 0) {  // a partial copy (EAGAIN): go on after it
        skip = copied;
      } else if (err == EAGAIN && ++again < kMaxAgain) {
        continue;
      } else if (err == EEXIST) {
        Wake(addr);
      } else {
        errors_++;
        Wake(addr);
      }
      addr += skip;
      src += skip;
      len -= std::min(len, skip);
    }
  }

  // Copies the non-zero pages of every region's file range that are not present yet; holes (SEEK_DATA/SEEK_HOLE)
  // and all-zero pages stay missing, which reads as zero once the uffd is gone. False when stopped first.
  bool PopulateAll() {
    std::unique_ptr<uint64_t[]> words(new uint64_t[kPopulateChunk / 8]);
    uint8_t* buf = reinterpret_cast<uint8_t*>(words.get());
    for (const Region& r : regions_) {
      uint64_t pos = 0;  // within the region
      while (pos < r.len) {
        if (stopping_.load()) return false;
        uint64_t end = r.len;
        off_t data = lseek(r.fd, static_cast<off_t>(r.offset + pos), SEEK_DATA);
        if (data < 0 && errno == ENXIO) break;  // only a hole is left
        if (data >= 0) {
          pos = std::max(pos, (static_cast<uint64_t>(data) - r.offset) & ~(kPage - 1));
          off_t hole = lseek(r.fd, data, SEEK_HOLE);
          if (hole >= 0) end = std::min(r.len, (static_cast<uint64_t>(hole) - r.offset + kPage - 1) & ~(kPage - 1));
        }  // else no SEEK_DATA here: read everything
        while (pos < end) {
          if (stopping_.load()) return false;
          const uint64_t n = std::min(kPopulateChunk, end - pos);
          if (!ReadFile(r.fd, r.offset + pos, buf, n)) errors_++;
          for (uint64_t i = 0; i < n;) {  // runs of non-zero pages, one UFFDIO_COPY each
            if (AllZero(buf + i)) {
              i += kPage;
              continue;
            }
            uint64_t j = i + kPage;
            while (j < n && !AllZero(buf + j)) j += kPage;
            Copy(r.base + pos + i, buf + i, j - i);
            i = j;
          }
          pos += n;
        }
      }
    }
    return true;
  }

  int uffd_ = -1;
  int stopFd_ = -1;
  std::vector<Region> regions_;
  std::vector<std::thread> handlers_;
  std::thread populator_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> faults_{0}, pagesCopied_{0}, zeroPages_{0}, errors_{0};
};

void InitUserfault(Napi::Env env, Napi::Object exports) {
  exports.Set("userfaultfdCreate", Napi::Function::New(env, UserfaultfdCreate, "userfaultfdCreate"));
  exports.Set("userfaultfdCreateFromDevice", Napi::Function::New(env, UserfaultfdCreateFromDevice, "userfaultfdCreateFromDevice"));
  exports.Set("uffdApi", Napi::Function::New(env, UffdApi, "uffdApi"));
  exports.Set("uffdRegister", Napi::Function::New(env, UffdRegister, "uffdRegister"));
  exports.Set("uffdUnregister", Napi::Function::New(env, UffdUnregister, "uffdUnregister"));
  exports.Set("UserfaultPagerHandle", UserfaultPagerHandle::Define(env));
}

}  // namespace kvmn
