// For the `alertrouterctl state check` CLI tests: `make_store DIR` creates a store in DIR as
// alertrouterd would (opened, migrated, one pending message); `make_store DIR --garbage` writes a
// file that is not SQLite in its place. Exit 0 on success.
#include <fstream>
#include <iostream>
#include <span>
#include <string>

#include "store/state_store.h"

int main(int argc, char** argv) {
  namespace store = alertrouter::store;
  if (argc < 2) {
    std::cerr << "usage: make_store DIR [--garbage]\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  try {
    if (argc > 2 && std::string(argv[2]) == "--garbage") {
      std::filesystem::create_directories(dir);
      std::ofstream(store::sqlite_store_file(dir)) << std::string(4096, 'g');
      return 0;
    }
    auto s = store::open_sqlite_store(dir);
    store::change_set set;
    store::outbox_message m;
    m.id = "page-1-0000000000000001";
    m.destination = "schedule:oncall-primary";
    m.url = "http://127.0.0.1:9/hook";
    m.channel = "webhook";
    m.body = "{}";
    set.messages.push_back(m);
    s->commit(std::span<store::change_set>(&set, 1));
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 1;
  }
  return 0;
}
