#pragma once
// A file of the upper floor that includes one below: allowed.
#include "gateway/low/below.h"
