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
    box_ = new PollBox{{}, this};
    int r = uv_poll_init(loop, &box_->handle, fd_);
    if (r != 0) {
      delete box_;
      box_ = nullptr;
      ThrowKvmError(env, "uv_poll_init", -r);
      return;
    }
    box_->handle.data = box_;
    r = uv_poll_start(&box_->handle, UV_READABLE, OnReadable);
    if (r != 0) {
      box_->owner = nullptr;  // not Ref'd yet: nothing to release
      uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle), OnClosed);
      box_ = nullptr;
      ThrowKvmError(env, "uv_poll_start", -r);
      return;
    }
    Ref();  // the JS object stays alive while the poll is open; released once libuv has closed the handle
    napi_add_env_cleanup_hook(env, CleanupHook, this);
  }

  ~EventFdPoll() override { delete context_; }

 private:
  // The handle and a back pointer, freed by libuv's close callback (never while a callback runs).
  struct PollBox {
    uv_poll_t handle;
    EventFdPoll* owner;  // null once the owner must not be touched (env teardown)
  };

  static void OnReadable(uv_poll_t* h, int status, int events) {
    auto* box = static_cast<PollBox*>(h->data);
    EventFdPoll* self = box->owner;
    if (!self) return;
    uint64_t v;
    if (read(self->fd_, &v, sizeof v) != sizeof v) return;  // EAGAIN: someone else drained it
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->callback_.MakeCallback(env.Global(), {Napi::BigInt::New(env, v)}, *self->context_);
  }

  // Unref (which may let the GC finalize this object) only here, outside any callback of ours.
  static void OnClosed(uv_handle_t* h) {
    auto* box = static_cast<PollBox*>(h->data);
    if (box->owner) box->owner->Unref();
    delete box;
  }

  // The environment (a worker, say) is going away: close the handle so its loop can close.
  static void CleanupHook(void* arg) {
    auto* self = static_cast<EventFdPoll*>(arg);
    if (!self->box_) return;
    self->box_->owner = nullptr;
    self->Stop();
  }

  void Stop() {
    uv_poll_stop(&box_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle), OnClosed);
    box_ = nullptr;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (box_) {
      napi_remove_env_cleanup_hook(info.Env(), CleanupHook, this);
      Stop();
      callback_.Reset();
    }
    return info.Env().Undefined();
  }

  Napi::Value RefJs(const Napi::CallbackInfo& info) {
    if (box_) uv_ref(reinterpret_cast<uv_handle_t*>(&box_->handle));
    return info.Env().Undefined();
  }

  Napi::Value UnrefJs(const Napi::CallbackInfo& info) {
    if (box_) uv_unref(reinterpret_cast<uv_handle_t*>(&box_->handle));
    return info.Env().Undefined();
  }

  int32_t fd_ = -1;
  PollBox* box_ = nullptr;
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
