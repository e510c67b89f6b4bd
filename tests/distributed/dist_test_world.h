// The communicator the data-parallel unit tests run on (dist_test_main.cpp owns it).
#pragma once
#include "engine/distributed/communicator.h"

asap::dist::Communicator& test_world();
