#pragma once
// The floor below.
