#pragma once
// The embedded interpreter as the reader of gunicorn config files: the master starts it to read
// the file and keeps it, with the file's module (its hooks), for the workers it forks.
#include <memory>

#include "server/config_sources.hpp"

namespace gantry {

class PythonRuntime;

class EmbeddedConfigReader : public PythonConfigReader {
public:
    EmbeddedConfigReader();
    ~EmbeddedConfigReader() override;
    std::vector<PythonConfigSetting> read(const std::string& location, const std::string& virtualenv) override;
    // The interpreter that read the file (null if none was read), for the master: its workers
    // fork from it and load the app into it.
    std::unique_ptr<PythonRuntime> take_interpreter();

private:
    std::unique_ptr<PythonRuntime> runtime_;
};

}  // namespace gantry
