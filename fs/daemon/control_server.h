// The control socket: a Unix-domain stream socket (mode 0600, root only)
// served by Boost.Asio on its own thread. Protocol: the client sends one
// line, "command [args...]"; the server replies with text and closes.
// Commands live in a table, so live tuning ("set key value") is one more
// entry.
//
// Owns the socket file and one thread, which accepts, reads and runs the
// handlers one at a time (a slow handler delays the other clients; reading
// and writing are asynchronous, so a silent client delays nobody).
// AddCommand, Start and Stop run on the main thread; Stop joins the thread,
// waiting for a handler that is running.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace reclaimfs::fs {

class ControlServer {
 public:
  // args: the words after the command. Returns the reply text.
  using Handler = std::function<std::string(const std::vector<std::string>& args)>;

  explicit ControlServer(std::string socket_path);
  ~ControlServer();  // Stop()

  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Register before Start(). `help` is listed by the built-in "help".
  void AddCommand(std::string name, std::string help, Handler handler);

  // Creates the socket's directory (0700) if missing, binds (replacing a
  // stale socket file), chmods 0600 and starts the thread.
  absl::Status Start();
  // Stops the thread and removes the socket file if it is still ours.
  void Stop();

  const std::string& socket_path() const { return socket_path_; }

  // Runs one request line through the table (also used by tests).
  std::string Dispatch(std::string_view line) const;

 private:
  struct Command {
    std::string help;
    Handler handler;
  };
  struct Io;

  const std::string socket_path_;
  std::map<std::string, Command, std::less<>> commands_;
  std::unique_ptr<Io> io_;
  std::thread thread_;
};

}  // namespace reclaimfs::fs
