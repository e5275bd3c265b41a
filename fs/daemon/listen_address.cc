// ParseListenAddress: split at the last colon, check the port and the IP literal.
#include "fs/daemon/listen_address.h"

#include <arpa/inet.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace reclaimfs::fs {

absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text) {
  const std::string t(text);
  ListenAddress a;
  std::string port;
  const size_t colon = t.rfind(':');
  if (colon == std::string::npos) {
    a.host = "127.0.0.1";
    port = t;
  } else {
    a.host = t.substr(0, colon);
    port = t.substr(colon + 1);
    if (a.host.empty()) a.host = "127.0.0.1";
    if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
  }
  uint32_t n = 0;
  if (!absl::SimpleAtoi(port, &n) || n == 0 || n > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("'", t, "': expected ADDRESS:PORT with a port in 1..65535"));
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, a.host.c_str(), buf) != 1 && inet_pton(AF_INET6, a.host.c_str(), buf) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", t, "': '", a.host, "' is not an IP address (such as 127.0.0.1 or [::1])"));
  }
  a.port = static_cast<uint16_t>(n);
  return a;
}

}  // namespace reclaimfs::fs
