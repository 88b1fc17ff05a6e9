// qlake report --html OUT: a self-contained HTML page with plots of the lake's history
// (rows per day, missing days, quarantine reasons, run durations).

#include <fstream>
#include <iostream>
#include <memory>

#include "command.h"
#include "pipeline_flags.h"
#include "qlake/pipeline/html_report.h"

namespace qlake::cli {

Runner SetupReport(CLI::App& app) {
  auto f = std::make_shared<PipelineFlags>();
  auto out = std::make_shared<std::string>();
  auto days = std::make_shared<int>(0);
  app.add_option("--html", *out, "Write the HTML page here")->required();
  app.add_option("--days", *days,
                 "Only the most recent N days per dataset (default all)");
  AddPipelineFlags(app, *f, /*writes=*/false);
  return [f, out, days](Context& ctx) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto o, MakePipelineOptions(*f, ctx));
    ARROW_ASSIGN_OR_RAISE(auto page, pipeline::BuildHtmlReport(o, *days));
    std::string tmp = *out + ".tmp";
    {
      std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
      file << page;
      if (!file) return arrow::Status::IOError("cannot write ", tmp);
    }
    std::error_code ec;
    std::filesystem::rename(tmp, *out, ec);
    if (ec) return arrow::Status::IOError("cannot write ", *out, ": ", ec.message());
    if (!ctx.quiet) std::cout << "wrote " << *out << " (" << page.size() << " bytes)\n";
    return arrow::Status::OK();
  };
}

}  // namespace qlake::cli
