{
  "targets": [
    {
      "target_name": "kvm_native",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/kvm.cc",
        "native/vm.cc",
        "native/device.cc",
        "native/vcpu.cc",
        "native/run-loop.cc",
        "native/vcpu-thread.cc",
        "native/watcher.cc",
        "native/uffd.cc"
      ],
      "conditions": [
        ["target_arch=='x64'", {
          "sources": ["native/x86-kvm.cc", "native/x86-vcpu.cc", "native/x86-port-io-exit.cc"]
        }],
        ["target_arch=='arm64'", {
          "sources": ["native/arm64-kvm.cc", "native/arm64-vcpu.cc"]
        }]
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-lpthread"]
    }
  ]
}
