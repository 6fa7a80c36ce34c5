// Tap interfaces: open /dev/net/tun and attach to (or create) a tap with TUNSETIFF, then move frames with one
// non-blocking read(2)/write(2) per frame. Each call is one system call; policy lives in TypeScript.
#include "common.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace hostio {

// tapOpen(device, name, vnetHdrSize) -> { fd, name }. name "" lets the kernel pick (tap%d); vnetHdrSize 0
// opens without IFF_VNET_HDR, otherwise sets IFF_VNET_HDR and TUNSETVNETHDRSZ to that size.
static Napi::Value TapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) { ThrowType(env, "tapOpen(device: string, name: string, vnetHdrSize)"); return env.Undefined(); }
  std::string device = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  uint32_t hdr;
  if (!ArgU32(info, 2, &hdr)) return env.Undefined();
  if (name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) { ThrowRange(env, "interface name must be shorter than 16 bytes"); return env.Undefined(); }
  if (hdr != 0 && (hdr < 10 || hdr > 64)) { ThrowRange(env, "vnetHdrSize must be 0 or 10..64"); return env.Undefined(); }

  int fd = open(device.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { ThrowSysError(env, ("open(" + device + ")").c_str(), errno); return env.Undefined(); }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (hdr ? IFF_VNET_HDR : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    ThrowSysError(env, "TUNSETIFF", err);
    return env.Undefined();
  }
  if (hdr) {
    int size = static_cast<int>(hdr);
    if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) {
      int err = errno;
      close(fd);
      ThrowSysError(env, "TUNSETVNETHDRSZ", err);
      return env.Undefined();
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("name", Napi::String::New(env, std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ))));
  return out;
}

// Moves one frame with `io` (read or write); -1 when the kernel has none queued or cannot take one now (EAGAIN).
static Napi::Value FrameIo(const Napi::CallbackInfo& info, const char* what, ssize_t (*io)(int, uint8_t*, size_t)) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint8_t* data;
  size_t len;
  if (!ArgI32(info, 0, &fd) || !ArgBytes(info, 1, &data, &len)) return env.Undefined();
  ssize_t n;
  do n = io(fd, data, len); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return Napi::Number::New(env, -1);
    ThrowSysError(env, what, errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

static ssize_t ReadFrame(int fd, uint8_t* data, size_t len) { return read(fd, data, len); }
static ssize_t WriteFrame(int fd, uint8_t* data, size_t len) { return write(fd, data, len); }

// tapRead(fd, buffer) -> bytes of one frame, or -1 when none is queued. A frame longer than the buffer comes back
// truncated to the buffer's length (the rest is discarded by the kernel).
static Napi::Value TapRead(const Napi::CallbackInfo& info) { return FrameIo(info, "read(tap)", ReadFrame); }

// tapWrite(fd, frame) -> bytes written, or -1 when the kernel cannot take it now.
static Napi::Value TapWrite(const Napi::CallbackInfo& info) { return FrameIo(info, "write(tap)", WriteFrame); }

// readMessage(fd, buffer) / writeMessage(fd, bytes): the same for any fd whose reads and writes are whole
// messages (a unix datagram socket as well as a tap), for threads that poll without exceptions on EAGAIN.
static Napi::Value ReadMessage(const Napi::CallbackInfo& info) { return FrameIo(info, "read", ReadFrame); }
static Napi::Value WriteMessage(const Napi::CallbackInfo& info) { return FrameIo(info, "write", WriteFrame); }

void InitTap(Napi::Env env, Napi::Object exports) {
  exports.Set("readMessage", Napi::Function::New(env, ReadMessage, "readMessage"));
  exports.Set("writeMessage", Napi::Function::New(env, WriteMessage, "writeMessage"));
  exports.Set("tapOpen", Napi::Function::New(env, TapOpen, "tapOpen"));
  exports.Set("tapRead", Napi::Function::New(env, TapRead, "tapRead"));
  exports.Set("tapWrite", Napi::Function::New(env, TapWrite, "tapWrite"));
}

}  // namespace hostio
