// The address of a listening socket as the config gives it
// (metrics_listen): an IP literal and a port; no host name lookups.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace reclaimfs::fs {

struct ListenAddress {
  std::string host;  // an IPv4 or IPv6 literal
  uint16_t port = 0;
};
// "127.0.0.1:9100", "[::1]:9100", ":9100" or "9100" (the last two: loopback).
absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace reclaimfs::fs
