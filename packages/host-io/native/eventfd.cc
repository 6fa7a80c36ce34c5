// eventfds for irqfd/ioeventfd, and a uv_poll watcher on the main loop that reads an eventfd when
// it becomes readable and hands the counter to a JS callback.
#include "common.h"
#include "poll-watcher.h"
#include <cerrno>
#include <sys/eventfd.h>
#include <unistd.h>

namespace hostio {

static Napi::Value EventfdCreate(const Napi::CallbackInfo& info) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) { ThrowSysError(info.Env(), "eventfd", errno); return info.Env().Undefined(); }
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value EventfdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint64_t v;
  if (!ArgI32(info, 0, &fd) || !ArgU64(info, 1, &v)) return env.Undefined();
  if (write(fd, &v, sizeof v) != sizeof v) ThrowSysError(env, "write(eventfd)", errno);
  return env.Undefined();
}

// Non-blocking read: the counter as a bigint, or null when it is zero.
static Napi::Value EventfdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  uint64_t v;
  if (read(fd, &v, sizeof v) != sizeof v) {
    if (errno == EAGAIN) return env.Null();
    ThrowSysError(env, "read(eventfd)", errno);
    return env.Undefined();
  }
  return Napi::BigInt::New(env, v);
}

class EventFdPoll : public PollWatcher<EventFdPoll> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EventFdPoll",
                       {InstanceMethod("close", &EventFdPoll::Close), InstanceMethod("ref", &EventFdPoll::RefJs),
                        InstanceMethod("unref", &EventFdPoll::UnrefJs)});
  }

  // new EventFdPoll(fd, callback(count: bigint)): starts polling at once.
  explicit EventFdPoll(const Napi::CallbackInfo& info) : PollWatcher<EventFdPoll>(info, "EventFd") {}

 private:
  friend class PollWatcher<EventFdPoll>;

  // Drains the counter and hands it over; nothing when someone else drained it first (EAGAIN).
  void OnReady() {
    uint64_t v;
    if (read(fd(), &v, sizeof v) != sizeof v) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    CallBack({Napi::BigInt::New(env, v)});
  }
};

void InitEventFd(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfdCreate", Napi::Function::New(env, EventfdCreate, "eventfdCreate"));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventfdWrite, "eventfdWrite"));
  exports.Set("eventfdRead", Napi::Function::New(env, EventfdRead, "eventfdRead"));
  Napi::Function ctor = EventFdPoll::Define(env);
  env.GetInstanceData<AddonData>()->fdPollCtor = Napi::Persistent(ctor);
  exports.Set("EventFdPoll", ctor);
}

}  // namespace hostio
