// eventfds for irqfd/ioeventfd, and a uv_poll watcher on the main loop that reads an eventfd when
// it becomes readable and hands the counter to a JS callback.
#include "common.h"
#include <cerrno>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

namespace kvmn {

static Napi::Value EventfdCreate(const Napi::CallbackInfo& info) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) { ThrowKvmError(info.Env(), "eventfd", errno); return info.Env().Undefined(); }
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value EventfdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint64_t v;
  if (!ArgI32(info, 0, &fd) || !ArgU64(info, 1, &v)) return env.Undefined();
  if (write(fd, &v, sizeof v) != sizeof v) ThrowKvmError(env, "write(eventfd)", errno);
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
    ThrowKvmError(env, "read(eventfd)", errno);
    return env.Undefined();
  }
  return Napi::BigInt::New(env, v);
}

class EventFdPoll : public Napi::ObjectWrap<EventFdPoll> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EventFdPoll",
                       {InstanceMethod("close", &EventFdPoll::Close), InstanceMethod("ref", &EventFdPoll::RefJs),
                        InstanceMethod("unref", &EventFdPoll::UnrefJs)});
  }

  // new EventFdPoll(fd, callback(count: bigint)): starts polling at once.
  explicit EventFdPoll(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EventFdPoll>(info) {
    Napi::Env env = info.Env();
    if (!ArgI32(info, 0, &fd_)) return;
    if (!info[1].IsFunction()) { ThrowType(env, "callback must be a function"); return; }
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, "EventFd");
    uv_loop_t* loop;
    napi_get_uv_event_loop(env, &loop);
    handle_ = new uv_poll_t;
    int r = uv_poll_init(loop, handle_, fd_);
    if (r == 0) r = uv_poll_start(handle_, UV_READABLE, OnReadable);
    if (r != 0) {
      delete handle_;
      handle_ = nullptr;
      ThrowKvmError(env, "uv_poll_start", -r);
      return;
    }
    handle_->data = this;
    Ref();  // the JS object stays alive while the poll is open
  }

  ~EventFdPoll() override { delete context_; }

 private:
  static void OnReadable(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<EventFdPoll*>(h->data);
    uint64_t v;
    if (read(self->fd_, &v, sizeof v) != sizeof v) return;  // EAGAIN: someone else drained it
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->callback_.MakeCallback(env.Global(), {Napi::BigInt::New(env, v)}, *self->context_);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (handle_) {
      uv_poll_stop(handle_);
      uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      handle_ = nullptr;
      callback_.Reset();
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value RefJs(const Napi::CallbackInfo& info) {
    if (handle_) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefJs(const Napi::CallbackInfo& info) {
    if (handle_) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  int32_t fd_ = -1;
  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* context_ = nullptr;
};

void InitEventFd(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfdCreate", Napi::Function::New(env, EventfdCreate, "eventfdCreate"));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventfdWrite, "eventfdWrite"));
  exports.Set("eventfdRead", Napi::Function::New(env, EventfdRead, "eventfdRead"));
  Napi::Function ctor = EventFdPoll::Define(env);
  env.GetInstanceData<AddonData>()->fdPollCtor = Napi::Persistent(ctor);
  exports.Set("EventFdPoll", ctor);
}

}  // namespace kvmn
