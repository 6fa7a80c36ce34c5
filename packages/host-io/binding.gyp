{
  "targets": [
    {
      "target_name": "host_io",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/eventfd.cc",
        "native/fd-poll.cc",
        "native/tap.cc",
        "native/file.cc",
        "native/memfd.cc",
        "native/unix-socket.cc",
        "native/mapping.cc",
        "native/ioctl.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
