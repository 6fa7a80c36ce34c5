// A readiness watcher for any non-blocking fd (a tap, say): a uv_poll on the main loop that calls a JS
// callback while the fd is readable, without reading it, so the caller reads as much as it wants. pause()
// stops polling (the kernel keeps queueing) and resume() restarts it; that is how consumers apply
// back-pressure. The watcher itself (and its lifetime rules) is PollWatcher (poll-watcher.h), shared with
// EventFdPoll (eventfd.cc).
#include "common.h"
#include "poll-watcher.h"

namespace hostio {

class ReadablePoll : public PollWatcher<ReadablePoll> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ReadablePoll",
                       {InstanceMethod("close", &ReadablePoll::Close), InstanceMethod("pause", &ReadablePoll::Pause),
                        InstanceMethod("resume", &ReadablePoll::Resume), InstanceMethod("ref", &ReadablePoll::RefJs),
                        InstanceMethod("unref", &ReadablePoll::UnrefJs)});
  }

  // new ReadablePoll(fd, callback()): starts polling at once.
  explicit ReadablePoll(const Napi::CallbackInfo& info) : PollWatcher<ReadablePoll>(info, "ReadablePoll") {}

 private:
  friend class PollWatcher<ReadablePoll>;

  // Readiness only: the caller reads the fd itself.
  void OnReady() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    CallBack({});
  }
};

void InitFdPoll(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = ReadablePoll::Define(env);
  env.GetInstanceData<AddonData>()->readablePollCtor = Napi::Persistent(ctor);
  exports.Set("ReadablePoll", ctor);
}

}  // namespace hostio
