"""Load and solar forecasts with uncertainty (pure: numpy, pandas, scikit-learn, pvlib)."""
