"""Fleet dispatch optimization with Pyomo and HiGHS.

Pure: numpy, pandas, Pyomo and highspy only. It takes plain inputs (frozen
dataclasses and pandas Series) and returns result objects; it never touches a
database, the web or a chain.

Units and signs (the project's table): power in kW, energy in kWh, durations in
hours inside the model, prices in currency per kWh, demand charges in currency per
kW. Timestamps are UTC and label the start of their interval. Power is positive when
drawn from the grid and negative when fed into it, for every device, site and feeder.
"""
