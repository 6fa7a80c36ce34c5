// Variable-length ioctl arguments in their C layout. In C++, the uapi headers' __DECLARE_FLEX_ARRAY
// wrapper contains an empty struct that takes a byte, which moves the entries and changes the size
// encoded in the ioctl numbers (KVM_SET_GSI_ROUTING here; CPUID and MSRs in x86-abi.h, the register
// list in arm64-vcpu.cc), so the binding declares its own headers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <linux/kvm.h>
#include <vector>

namespace kvmn {

struct RoutingHeader { uint32_t nr; uint32_t flags; };
static_assert(sizeof(RoutingHeader) == 8, "C layout");

constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, RoutingHeader);

// A header followed directly by `n` entries, zero-filled.
template <class Header, class Entry>
class VarArg {
 public:
  explicit VarArg(size_t n) : words_((sizeof(Header) + n * sizeof(Entry) + 7) / 8, 0) {}
  Header* header() { return reinterpret_cast<Header*>(words_.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(reinterpret_cast<uint8_t*>(words_.data()) + sizeof(Header)); }
  void* arg() { return words_.data(); }

 private:
  std::vector<uint64_t> words_;  // 8-byte aligned storage
};

}  // namespace kvmn
