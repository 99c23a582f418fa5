//===- Launch.cpp - The ranks' launch, supervised -------------------------===//
//
// `cleavec train` starts the program (under mpirun for a mesh) as its child
// and stays its supervisor, so that what a scheduler does to cleavec
// reaches the whole job:
//  - SIGTERM, SIGINT and SIGHUP are forwarded to the child (mpirun ends
//    every rank on them), escalating to SIGKILL if it has not ended soon;
//  - the child dies with cleavec (a parent-death signal), and the ranks
//    with their launcher (CLEAVE_STOP_WITH_LAUNCHER, see the runtime);
//  - a rank killed by a signal ends the job (mpirun's doing) with cleavec's
//    own message naming the rank and the signal, read from mpirun's report
//    as the job's error stream passes through.
//
//===----------------------------------------------------------------------===//

#include "cleave/Driver/Driver.h"

#include "DriverConfig.h"
#include "cleave/runtime/Checkpoint.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Regex.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::driver;

namespace {

/// The signals a scheduler or a user stops a job with: cleavec forwards
/// them.
constexpr int kStoppingSignals[] = {SIGTERM, SIGINT, SIGHUP};

/// The job's process, for the signal handler; 0 when none runs.
volatile sig_atomic_t jobPid = 0;
/// The first stopping signal cleavec received, 0 while none.
volatile sig_atomic_t receivedSignal = 0;

void forwardSignal(int signal) {
  int savedErrno = errno;
  if (!receivedSignal)
    receivedSignal = signal;
  if (jobPid > 0)
    ::kill(jobPid, signal);
  errno = savedErrno;
}

/// The stopping signals' handlers while a job runs; the previous ones
/// come back when it ends.
class SignalForwarding {
public:
  SignalForwarding() {
    struct sigaction action = {};
    action.sa_handler = forwardSignal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < std::size(kStoppingSignals); ++i)
      ::sigaction(kStoppingSignals[i], &action, &previous[i]);
  }
  ~SignalForwarding() {
    for (size_t i = 0; i < std::size(kStoppingSignals); ++i)
      ::sigaction(kStoppingSignals[i], &previous[i], nullptr);
  }

private:
  struct sigaction previous[std::size(kStoppingSignals)];
};

/// Set for the ranks cleavec starts: each ends once its launcher is gone
/// (the runtime's stopWithLauncher reads it).
constexpr const char *kStopWithLauncherVariable = "CLEAVE_STOP_WITH_LAUNCHER";

/// How long the job has to end after a forwarded signal before SIGKILL.
constexpr std::chrono::seconds kStopGrace(10);

/// Scans the job's error stream line by line for mpirun's report of a rank
/// that a signal killed.
class RankDeathScanner {
public:
  void consume(StringRef text) {
    pending += text.str();
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      scanLine(StringRef(pending).take_front(newline));
      pending.erase(0, newline + 1);
    }
    // mpirun's report is a short line: a longer one is not it.
    if (pending.size() > 4096)
      pending.clear();
  }
  /// "rank 1 was killed by signal 9 (Killed)", or empty.
  const std::string &getDeath() const { return death; }

private:
  void scanLine(StringRef line) {
    // Open MPI: "mpirun noticed that process rank 1 with PID 123 on node
    // n exited on signal 9 (Killed)."
    static const llvm::Regex report(
        "process rank ([0-9]+) with PID [0-9]+ on node [^ ]+ exited on "
        "signal ([0-9]+)( \\(([^)]*)\\))?");
    SmallVector<StringRef> groups;
    if (death.empty() && report.match(line, &groups))
      death = ("rank " + groups[1] + " was killed by signal " + groups[2] +
               (groups[4].empty() ? "" : " (" + groups[4] + ")"))
                  .str();
  }

  std::string pending, death;
};

/// Starts `command` as cleavec's child, its standard error into `errorPipe`
/// and `environment` its environment. Returns the pid, or -1 with `errno`
/// set. Everything the child needs is built before the fork: after it, only
/// async-signal-safe calls (cleavec has threads).
pid_t startChild(ArrayRef<std::string> command,
                 ArrayRef<std::string> environment, int errorPipe[2]) {
  SmallVector<char *> argv, envp;
  for (const std::string &word : command)
    argv.push_back(const_cast<char *>(word.c_str()));
  argv.push_back(nullptr);
  for (const std::string &variable : environment)
    envp.push_back(const_cast<char *>(variable.c_str()));
  envp.push_back(nullptr);
  std::string failure =
      "cleavec: error: cannot run '" + command.front() + "'\n";
  // The stopping signals wait until the child has its own handlers: one
  // arriving in between would reach cleavec's handler in the child, which
  // forwards to no one.
  sigset_t stopping, previous;
  sigemptyset(&stopping);
  for (int signal : kStoppingSignals)
    sigaddset(&stopping, signal);
  ::pthread_sigmask(SIG_BLOCK, &stopping, &previous);
  pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child != 0) {
    int forkError = errno;
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    errno = forkError;
    return child;
  }
  // The child: the defaults first, then death with cleavec (even by
  // SIGKILL, which no handler sees), then the signals may come.
  for (int signal : kStoppingSignals)
    ::signal(signal, SIG_DFL);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (::getppid() != parent)
    ::_exit(127);
  ::dup2(errorPipe[1], STDERR_FILENO);
  ::close(errorPipe[0]);
  ::close(errorPipe[1]);
  ::execve(argv[0], argv.data(), envp.data());
  ssize_t ignored = ::write(STDERR_FILENO, failure.data(), failure.size());
  (void)ignored;
  ::_exit(127);
}

/// This process's environment plus the job's variables: the ranks stop
/// with their launcher, and the output directory's lock is cleavec's.
SmallVector<std::string> getJobEnvironment() {
  SmallVector<std::string> environment;
  for (char **variable = environ; *variable; ++variable) {
    StringRef text(*variable);
    StringRef name = text.split('=').first;
    if (name != kStopWithLauncherVariable &&
        name != ::cleave::rt::kOutputLockOwnerVariable)
      environment.push_back(text.str());
  }
  environment.push_back(std::string(kStopWithLauncherVariable) + "=1");
  environment.push_back(std::string(::cleave::rt::kOutputLockOwnerVariable) +
                        "=" + std::to_string(::getpid()));
  return environment;
}

} // namespace

int mlir::cleave::driver::runJob(ArrayRef<std::string> command,
                                 llvm::raw_ostream &log) {
  log << "cleavec: run: " << joinCommand(command) << "\n";
  log.flush();
  llvm::errs().flush();
  int errorPipe[2];
  if (::pipe2(errorPipe, O_CLOEXEC) != 0) {
    error() << "cannot create a pipe: " << std::strerror(errno) << "\n";
    return 1;
  }
  receivedSignal = 0;
  SmallVector<std::string> environment = getJobEnvironment();
  SignalForwarding forwarding;
  pid_t child = startChild(command, environment, errorPipe);
  ::close(errorPipe[1]);
  if (child < 0) {
    error() << "cannot start '" << command.front()
            << "': " << std::strerror(errno) << "\n";
    ::close(errorPipe[0]);
    return 1;
  }
  jobPid = child;
  // A signal that came between the handlers' install and the pid's record.
  if (receivedSignal)
    ::kill(child, receivedSignal);

  // Pass the job's errors through until it has ended and the stream is
  // drained; ranks that outlive their launcher may hold the pipe open, so
  // the end of the child, not of the stream, ends the wait.
  RankDeathScanner scanner;
  using Clock = std::chrono::steady_clock;
  int status = 0;
  bool streamOpen = true;
  std::optional<Clock::time_point> signalled, endedAt;
  auto reap = [&] {
    if (!endedAt && ::waitpid(child, &status, WNOHANG) == child) {
      jobPid = 0;
      endedAt = Clock::now();
    }
  };
  // A job still running this long after a forwarded signal is killed.
  auto escalate = [&] {
    if (!receivedSignal || endedAt)
      return;
    if (!signalled)
      signalled = Clock::now();
    else if (Clock::now() - *signalled > kStopGrace)
      ::kill(child, SIGKILL);
  };
  while (streamOpen &&
         !(endedAt && Clock::now() - *endedAt > std::chrono::seconds(1))) {
    struct pollfd readable = {errorPipe[0], POLLIN, 0};
    if (::poll(&readable, 1, 100) > 0) {
      char buffer[4096];
      ssize_t length = ::read(errorPipe[0], buffer, sizeof(buffer));
      if (length > 0) {
        StringRef text(buffer, length);
        llvm::errs() << text;
        llvm::errs().flush();
        scanner.consume(text);
      } else if (length == 0 || errno != EINTR) {
        streamOpen = false;
      }
    }
    reap();
    escalate();
  }
  ::close(errorPipe[0]);
  while (!endedAt) {
    reap();
    escalate();
    if (!endedAt)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  if (receivedSignal) {
    error() << "stopped by signal " << receivedSignal << " ("
            << strsignal(receivedSignal) << "); the job's ranks were stopped\n";
    return 128 + receivedSignal;
  }
  if (!scanner.getDeath().empty()) {
    error() << scanner.getDeath() << "; the job was stopped\n";
    return 1;
  }
  if (WIFSIGNALED(status)) {
    error() << "'" << command.front() << "' was killed by signal "
            << WTERMSIG(status) << " (" << strsignal(WTERMSIG(status)) << ")\n";
    return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/// The launcher of the MPI the program links (see DriverConfig.h).
FailureOr<SmallVector<std::string>>
mlir::cleave::driver::getLocalLaunch(int64_t ranks) {
  // The launcher of the MPI the program links, found when Cleave was
  // configured; another MPI's would start unrelated single processes.
  std::string mpirun = CLEAVEC_MPIRUN;
  if (mpirun.empty() || !llvm::sys::fs::can_execute(mpirun))
    if (llvm::ErrorOr<std::string> found =
            llvm::sys::findProgramByName("mpirun"))
      mpirun = *found;
  if (mpirun.empty() || !llvm::sys::fs::can_execute(mpirun)) {
    error() << "cannot find mpirun to launch the ranks: install openmpi-bin\n";
    return failure();
  }
  SmallVector<std::string> command = {
      mpirun,      "-np", std::to_string(ranks), "--oversubscribe",
      "--bind-to", "none"};
  if (::geteuid() == 0)
    command.push_back("--allow-run-as-root");
  // The job's variables (see getJobEnvironment) reach every rank.
  command.append({"-x", "OMP_NUM_THREADS=1", "-x", "OPENBLAS_NUM_THREADS=1",
                  "-x", kStopWithLauncherVariable, "-x",
                  ::cleave::rt::kOutputLockOwnerVariable});
  return command;
}

int mlir::cleave::driver::runTraining(StringRef executable,
                                      const TrainingRun &run,
                                      llvm::raw_ostream &log) {
  SmallVector<std::string> command = {executable.str()};
  auto add = [&](const char *flag, const std::string &value) {
    command.append({flag, value});
  };
  add("--data", run.data);
  add("--steps", std::to_string(run.steps));
  add("--lr", run.lr);
  add("--lr-schedule", run.lrSchedule);
  add("--warmup", run.warmup);
  add("--decay-steps", run.decaySteps);
  add("--min-lr", run.minLr);
  // A resumed run keeps its checkpoint's seed unless one is given.
  std::string seed = std::to_string(run.seed);
  if (run.resume.empty()) {
    add("--seed", seed);
    add("--init-seed", seed);
  } else if (run.seedGiven) {
    add("--seed", seed);
  }
  if (run.reseed)
    command.push_back("--reseed");
  add("--save-every", run.saveEvery);
  add("--out", run.out);
  if (run.tokenBytes)
    command.append({"--token-bytes", std::to_string(run.tokenBytes)});
  if (!run.resume.empty())
    command.append({"--resume", run.resume});
  if (!run.initFrom.empty())
    command.append({"--init-from", run.initFrom});
  if (!run.bucketMegabytes.empty())
    command.append({"--bucket-mb", run.bucketMegabytes});
  if (run.mesh.empty())
    return runJob(command, log);
  int64_t ranks = getMeshDevices(run.mesh);
  FailureOr<SmallVector<std::string>> launch = getLocalLaunch(ranks);
  if (failed(launch))
    return 1;
  log << "cleavec: on a cluster: mpirun -np " << ranks << " "
      << joinCommand(command) << "\ncleavec:   or: srun -n " << ranks << " "
      << joinCommand(command) << "\n";
  command.insert(command.begin(), launch->begin(), launch->end());
  return runJob(command, log);
}
