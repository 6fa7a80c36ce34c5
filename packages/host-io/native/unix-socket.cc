// Unix-domain sockets that carry fds (SCM_RIGHTS): socketpair, connect, and one sendmsg/recvmsg per call. The
// sockets are non-blocking and close-on-exec; received fds are close-on-exec (MSG_CMSG_CLOEXEC). vfio-user
// passes DMA region and interrupt fds this way. Also datagram sockets bound at a path (virtio-net's dgram
// backend) and blocking polls for threads that wait. Policy (framing, which fds mean what) lives in TypeScript.
#include "common.h"
#include <cerrno>
#include <cstring>
#include <string>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace hostio {

// At most this many fds per message (the kernel's SCM_MAX_FD).
static constexpr size_t kMaxFds = 253;

static int SocketType(const Napi::Value& seqpacket) {
  return (seqpacket.ToBoolean().Value() ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
}

static bool SocketAddress(Napi::Env env, const std::string& path, sockaddr_un* addr) {
  if (path.empty() || path.size() >= sizeof addr->sun_path || path.find('\0') != std::string::npos) {
    ThrowRange(env, "socket path must be 1 to 107 bytes without NUL");
    return false;
  }
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

// socketPair(seqpacket) -> [fd, fd]
static Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SocketType(info[0]), 0, sv) < 0) { ThrowSysError(env, "socketpair", errno); return env.Undefined(); }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, sv[0]));
  out.Set(1u, Napi::Number::New(env, sv[1]));
  return out;
}

// unixConnect(path, seqpacket) -> fd. A unix connect completes at once or fails (EAGAIN: the listener's backlog
// is full).
static Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) { ThrowType(env, "unixConnect(path: string, seqpacket: boolean)"); return env.Undefined(); }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  if (!SocketAddress(env, path, &addr)) return env.Undefined();
  int fd = socket(AF_UNIX, SocketType(info[1]), 0);
  if (fd < 0) { ThrowSysError(env, "socket", errno); return env.Undefined(); }
  int r;
  do r = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr); while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    close(fd);
    ThrowSysError(env, ("connect(" + path + ")").c_str(), err);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// sendFds(fd, data, fds: number[]) -> bytes sent, or -1 when the socket cannot take it now (EAGAIN). The fds
// travel with the first byte of `data`; the receiver gets its own fds for the same open files.
static Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t sock;
  uint8_t* data;
  size_t len;
  if (!ArgI32(info, 0, &sock) || !ArgBytes(info, 1, &data, &len)) return env.Undefined();
  if (!info[2].IsArray()) { ThrowType(env, "fds must be an array of fd numbers"); return env.Undefined(); }
  Napi::Array list = info[2].As<Napi::Array>();
  if (list.Length() > kMaxFds) { ThrowRange(env, "at most 253 fds per message"); return env.Undefined(); }
  std::vector<int> fds(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsNumber() || v.As<Napi::Number>().Int32Value() < 0 || v.As<Napi::Number>().DoubleValue() != v.As<Napi::Number>().Int32Value()) {
      ThrowType(env, "fds must be non-negative integers");
      return env.Undefined();
    }
    fds[i] = v.As<Napi::Number>().Int32Value();
  }
  iovec iov{data, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return Napi::Number::New(env, -1);
    ThrowSysError(env, "sendmsg", errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// recvFds(fd, buffer, maxFds) -> { bytes, fds } (bytes 0: the peer closed), or null when nothing is queued
// (EAGAIN). More fds than maxFds in one message: the ones that arrived are closed and EMSGSIZE is thrown.
static Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t sock;
  uint8_t* data;
  size_t len;
  uint32_t maxFds;
  if (!ArgI32(info, 0, &sock) || !ArgBytes(info, 1, &data, &len) || !ArgU32(info, 2, &maxFds)) return env.Undefined();
  if (maxFds > kMaxFds) { ThrowRange(env, "maxFds must be at most 253"); return env.Undefined(); }
  iovec iov{data, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (maxFds ? maxFds : 1)));
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return env.Null();
    ThrowSysError(env, "recvmsg", errno);
    return env.Undefined();
  }
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* p = CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, p + i * sizeof(int), sizeof fd);
      fds.push_back(fd);
    }
  }
  // The control buffer is rounded up to 8 bytes, so it can hold one fd more than asked for.
  if ((msg.msg_flags & MSG_CTRUNC) || fds.size() > maxFds) {
    for (int fd : fds) close(fd);
    ThrowSysError(env, "recvmsg (more fds than maxFds)", EMSGSIZE);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(n)));
  Napi::Array list = Napi::Array::New(env, fds.size());
  for (uint32_t i = 0; i < fds.size(); i++) list.Set(i, Napi::Number::New(env, fds[i]));
  out.Set("fds", list);
  return out;
}

// A new socket of `type` bound to `path` (which must not exist: bind never replaces a file) and, with a backlog,
// listening; mode 0600 by umask-independent fchmod before bind (the socket file takes the socket's mode, so only
// the owner may connect or send). -1 after throwing.
static int BindAt(const Napi::CallbackInfo& info, const char* usage, int type, int backlog) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) { ThrowType(env, usage); return -1; }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  if (!SocketAddress(env, path, &addr)) return -1;
  int fd = socket(AF_UNIX, type, 0);
  if (fd < 0) { ThrowSysError(env, "socket", errno); return -1; }
  fchmod(fd, 0600);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || (backlog > 0 && listen(fd, backlog) < 0)) {
    int err = errno;
    close(fd);
    ThrowSysError(env, ("bind(" + path + ")").c_str(), err);
    return -1;
  }
  return fd;
}

// unixListen(path, seqpacket) -> fd: a new socket bound to `path` and listening, non-blocking and close-on-exec.
static Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  int fd = BindAt(info, "unixListen(path: string, seqpacket: boolean)", SocketType(info[1]), 16);
  return fd < 0 ? info.Env().Undefined() : Napi::Number::New(info.Env(), fd);
}

// unixDgramBind(path) -> fd: a new datagram socket bound to `path`, non-blocking and close-on-exec. Each
// datagram is one message (an Ethernet frame, say).
static Napi::Value UnixDgramBind(const Napi::CallbackInfo& info) {
  int fd = BindAt(info, "unixDgramBind(path: string)", SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? info.Env().Undefined() : Napi::Number::New(info.Env(), fd);
}

// unixDgramConnect(fd, path): sets the datagram socket's peer; it then sends only there and receives only from
// there. ENOENT: nothing at the path; ECONNREFUSED: a socket file nobody is bound to.
static Napi::Value UnixDgramConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  if (!info[1].IsString()) { ThrowType(env, "unixDgramConnect(fd: number, path: string)"); return env.Undefined(); }
  std::string path = info[1].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  if (!SocketAddress(env, path, &addr)) return env.Undefined();
  int r;
  do r = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr); while (r < 0 && errno == EINTR);
  if (r < 0) { ThrowSysError(env, ("connect(" + path + ")").c_str(), errno); return env.Undefined(); }
  return env.Undefined();
}

// unixAccept(listenFd) -> fd (non-blocking, close-on-exec), or null when no connection is waiting (EAGAIN).
static Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t lfd;
  if (!ArgI32(info, 0, &lfd)) return env.Undefined();
  int fd;
  do fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC); while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowSysError(env, "accept4", errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// Polls one fd for `events`: true when they (or a hang-up) came, false when the time ran out. Blocks the calling
// thread; a signal restarts the full timeout, so callers bound it.
static Napi::Value PollOne(const Napi::CallbackInfo& info, short events) {
  Napi::Env env = info.Env();
  int32_t fd, timeout;
  if (!ArgI32(info, 0, &fd) || !ArgI32(info, 1, &timeout)) return env.Undefined();
  pollfd p{fd, events, 0};
  int r;
  do r = poll(&p, 1, timeout); while (r < 0 && errno == EINTR);
  if (r < 0) { ThrowSysError(env, "poll", errno); return env.Undefined(); }
  if (r > 0 && (p.revents & POLLNVAL)) { ThrowSysError(env, "poll", EBADF); return env.Undefined(); }
  return Napi::Boolean::New(env, r > 0);
}

// waitReadable(fd, timeoutMs): a synchronous request/reply protocol waits for its answer this way.
static Napi::Value WaitReadable(const Napi::CallbackInfo& info) { return PollOne(info, POLLIN); }

// waitWritable(fd, timeoutMs): a sender waits for room in a full socket this way.
static Napi::Value WaitWritable(const Napi::CallbackInfo& info) { return PollOne(info, POLLOUT); }

// waitAnyReadable(fds, timeoutMs) -> the index of the first fd that is readable or hung up, -1 when the time ran
// out. A data-plane thread sleeps on its doorbell and its host input (a tap) at once this way.
static Napi::Value WaitAnyReadable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t timeout;
  if (info.Length() < 1 || !info[0].IsArray() || !ArgI32(info, 1, &timeout)) {
    if (info.Length() < 1 || !info[0].IsArray()) Napi::TypeError::New(env, "fds must be an array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<pollfd> fds;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsNumber()) {
      Napi::TypeError::New(env, "fds must be numbers").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    fds.push_back(pollfd{v.As<Napi::Number>().Int32Value(), POLLIN, 0});
  }
  int r;
  do r = poll(fds.data(), fds.size(), timeout); while (r < 0 && errno == EINTR);
  if (r < 0) { ThrowSysError(env, "poll", errno); return env.Undefined(); }
  for (size_t i = 0; r > 0 && i < fds.size(); i++) {
    if (fds[i].revents & POLLNVAL) { ThrowSysError(env, "poll", EBADF); return env.Undefined(); }
    if (fds[i].revents) return Napi::Number::New(env, static_cast<double>(i));
  }
  return Napi::Number::New(env, -1);
}

void InitUnixSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("unixDgramBind", Napi::Function::New(env, UnixDgramBind, "unixDgramBind"));
  exports.Set("unixDgramConnect", Napi::Function::New(env, UnixDgramConnect, "unixDgramConnect"));
  exports.Set("waitWritable", Napi::Function::New(env, WaitWritable, "waitWritable"));
  exports.Set("waitAnyReadable", Napi::Function::New(env, WaitAnyReadable, "waitAnyReadable"));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair, "socketPair"));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect, "unixConnect"));
  exports.Set("sendFds", Napi::Function::New(env, SendFds, "sendFds"));
  exports.Set("recvFds", Napi::Function::New(env, RecvFds, "recvFds"));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept, "unixAccept"));
  exports.Set("waitReadable", Napi::Function::New(env, WaitReadable, "waitReadable"));
}

}  // namespace hostio
