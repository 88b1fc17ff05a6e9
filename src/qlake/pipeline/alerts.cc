#include "qlake/pipeline/alerts.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <curl/curl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "qlake/core/logging.h"

extern char** environ;

namespace qlake::pipeline {

namespace {

// Runs `command` through /bin/sh with `input` on stdin; kills it after `timeout`.
DeliveryRecord RunCommand(const std::string& command, const std::string& input,
                          const std::vector<std::string>& extra_env, int timeout_s) {
  DeliveryRecord r{"command", false, ""};
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  for (const auto& e : extra_env) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

  pid_t pid = fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    close(pipefd[0]);
    close(pipefd[1]);
    return r;
  }
  if (pid == 0) {
    dup2(pipefd[0], 0);
    // Own process group so a timeout kills the whole command.
    setpgid(0, 0);
    execve("/bin/sh", argv, envp.data());
    _exit(127);
  }
  close(pipefd[0]);
  signal(SIGPIPE, SIG_IGN);
  std::size_t done = 0;
  while (done < input.size()) {
    ssize_t n = write(pipefd[1], input.data() + done, input.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // the command did not read its input; its exit status decides
    }
    done += static_cast<std::size_t>(n);
  }
  close(pipefd[1]);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      r.error = std::string("waitpid: ") + std::strerror(errno);
      return r;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.error = fmt::format("alert command timed out after {}s", timeout_s);
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    r.ok = true;
  } else if (WIFEXITED(status)) {
    r.error = fmt::format("alert command exited with status {}", WEXITSTATUS(status));
  } else {
    r.error = "alert command was killed by a signal";
  }
  return r;
}

size_t DiscardBody(char*, size_t size, size_t n, void*) { return size * n; }

DeliveryRecord PostJson(const std::string& url, const std::string& body, int timeout_s) {
  DeliveryRecord r{"webhook", false, ""};
  static const bool init = [] {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  }();
  if (!init) {
    r.error = "libcurl initialization failed";
    return r;
  }
  CURL* curl = curl_easy_init();
  if (!curl) {
    r.error = "libcurl: cannot create a handle";
    return r;
  }
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "User-Agent: qlake");
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(timeout_s));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardBody);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK) {
    r.error = fmt::format("POST {} failed: {}", url,
                          errbuf[0] ? errbuf : curl_easy_strerror(rc));
  } else if (code < 200 || code >= 300) {
    r.error = fmt::format("POST {} answered HTTP {}", url, code);
  } else {
    r.ok = true;
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return r;
}

}  // namespace

int64_t PublishDeadline(Date day, int deadline_minute) {
  return FromNewYork(day + date::days{1}, deadline_minute) / 1'000'000'000;
}

std::vector<AlertRecord> EvaluateAlerts(const AlertOptions& o, const RunReport& report) {
  std::vector<AlertRecord> out;
  if (o.on_failure) {
    if (!report.error.empty()) {
      out.push_back({"failure", "", "", "run failed: " + report.error});
    }
    for (const auto& d : report.datasets) {
      for (const auto& day : d.days) {
        if (day.status != "ok") {
          out.push_back({"failure", d.dataset, FormatDate(day.day),
                         fmt::format("{} {} failed: {}", d.dataset, FormatDate(day.day),
                                     day.error)});
        }
      }
      for (const auto& s : d.stages) {
        if (s.status == "failed") {
          out.push_back(
              {"failure", d.dataset, "",
               fmt::format("{} stage {} failed: {}", d.dataset, s.stage, s.error)});
        }
      }
    }
  }
  for (const auto& d : report.datasets) {
    if (o.on_missing_day) {
      for (auto m : d.missing) {
        out.push_back(
            {"missing_day", d.dataset, FormatDate(m),
             fmt::format("{} {} is not published yet, past its expected time "
                         "({:02}:{:02} New York time the next day)",
                         d.dataset, FormatDate(m), o.publish_deadline_minute / 60,
                         o.publish_deadline_minute % 60)});
      }
    }
    for (const auto& day : d.days) {
      const StageRun* ing = day.Stage("ingest");
      if (day.status != "ok" || !ing) continue;
      if (o.max_quarantine_rate >= 0 && ing->rows_read > 0) {
        double rate = static_cast<double>(ing->rows_quarantined) /
                      static_cast<double>(ing->rows_read);
        if (rate > o.max_quarantine_rate) {
          out.push_back(
              {"quarantine_rate", d.dataset, FormatDate(day.day),
               fmt::format("{} {}: {} of {} rows quarantined ({:.2f} % > {:.2f} %)",
                           d.dataset, FormatDate(day.day), ing->rows_quarantined,
                           ing->rows_read, rate * 100, o.max_quarantine_rate * 100)});
        }
      }
      if (o.on_empty_day && ing->rows_written == 0) {
        out.push_back({"empty_day", d.dataset, FormatDate(day.day),
                       fmt::format("{} {} was committed without any rows ({} read)",
                                   d.dataset, FormatDate(day.day), ing->rows_read)});
      }
    }
  }
  return out;
}

std::string AlertDocument(const RunReport& report) {
  nlohmann::ordered_json alerts = nlohmann::ordered_json::array();
  std::string kinds;
  for (const auto& a : report.alerts) {
    alerts.push_back({{"kind", a.kind},
                      {"dataset", a.dataset},
                      {"day", a.day},
                      {"message", a.message}});
  }
  std::string summary = fmt::format("qlake {} on {}: {} alert(s)", report.command,
                                    report.host, report.alerts.size());
  if (!report.alerts.empty()) summary += ": " + report.alerts.front().message;
  nlohmann::ordered_json j = {{"format", "qlake.alert.v1"}, {"run_id", report.run_id},
                              {"command", report.command},  {"status", report.status},
                              {"host", report.host},        {"lake", report.lake},
                              {"summary", summary},         {"alerts", alerts}};
  return MaskSecrets(j.dump());
}

std::vector<DeliveryRecord> DeliverAlerts(const AlertOptions& o,
                                          const RunReport& report) {
  std::vector<DeliveryRecord> out;
  if (report.alerts.empty() || !o.enabled()) return out;
  const std::string doc = AlertDocument(report);
  std::string kinds;
  for (const auto& a : report.alerts) {
    if (kinds.find(a.kind) == std::string::npos)
      kinds += (kinds.empty() ? "" : ",") + a.kind;
  }
  auto j = nlohmann::json::parse(doc);
  if (!o.command.empty()) {
    out.push_back(RunCommand(o.command, doc,
                             {"QLAKE_ALERT_KINDS=" + kinds,
                              "QLAKE_ALERT_SUMMARY=" + j["summary"].get<std::string>(),
                              "QLAKE_RUN_ID=" + report.run_id},
                             o.timeout_seconds));
  }
  if (!o.webhook.empty()) out.push_back(PostJson(o.webhook, doc, o.timeout_seconds));
  for (const auto& d : out) {
    if (!d.ok) spdlog::error("alert delivery via {} failed: {}", d.target, d.error);
  }
  return out;
}

}  // namespace qlake::pipeline
